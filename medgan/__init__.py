"""medgan: generative models for CT on MONAI.

Heavy modules (torch, MONAI) are imported by the subpackages that need them, so that
``import medgan`` and every command's ``--help`` stay instant.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
