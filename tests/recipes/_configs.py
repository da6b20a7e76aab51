"""Inline configs of every recipe with tiny nets (channels <= 8, 16-32 px), shared by the recipe tests."""

from __future__ import annotations

import copy

PATCH_D = {"type": "patchgan", "feature_size": 4, "num_layers": 1}

RECIPE_CONFIGS: dict[str, dict] = {
    "dae": {"recipe": {"name": "dae", "noise_std": 0.05},
            "nets": {"generator": {"type": "dae", "channels": [4, 8], "strides": [2, 2]}}},
    "vae": {"recipe": {"name": "vae", "kl_weight": 0.01},
            "nets": {"generator": {"type": "vae", "channels": [4, 8], "strides": [2, 2], "latent_size": 8}}},
    "redcnn": {"recipe": {"name": "redcnn"}, "nets": {"generator": {"type": "redcnn", "feature_size": 4}},
               "data": {"patch_size": [32, 32]}},
    "pix2pix": {"recipe": {"name": "pix2pix"},
                "nets": {"generator": {"type": "unet_generator", "feature_size": 4, "num_downs": 3}, "discriminator": PATCH_D}},
    "cyclegan": {"recipe": {"name": "cyclegan", "pool_size": 3},
                 "nets": {"generator": {"type": "resnet_generator", "feature_size": 4, "num_res_blocks": 1},
                          "discriminator": PATCH_D},
                 "data": {"pairing": "unpaired"}},
    "srgan": {"recipe": {"name": "srgan", "pretrain_steps": 1},
              "nets": {"generator": {"type": "srresnet", "feature_size": 4, "num_res_blocks": 1},
                       "discriminator": {"type": "srgan_discriminator", "feature_size": 4, "dense_units": 8}},
              "data": {"scale": 2}},
    "dcgan": {"recipe": {"name": "dcgan", "latent_size": 8},
              "nets": {"generator": {"type": "dcgan_generator", "feature_size": 4},
                       "discriminator": {"type": "dcgan_discriminator", "feature_size": 4}},
              "data": {"pairing": "single"}},
    "cgan": {"recipe": {"name": "cgan", "latent_size": 8, "num_classes": 2},
             "nets": {"generator": {"type": "dcgan_generator", "feature_size": 4},
                      "discriminator": {"type": "dcgan_discriminator", "feature_size": 4}},
             "data": {"pairing": "single"}},
}


def tiny_config(name: str, run_dir, **sections) -> dict:
    """The inline config of recipe ``name`` writing to ``run_dir``; ``sections`` update top-level sections."""
    cfg = copy.deepcopy(RECIPE_CONFIGS[name])
    cfg.setdefault("data", {})
    cfg["data"] = {"root": "unused", "patch_size": [16, 16], "batch_size": 1, **cfg["data"]}
    cfg["trainer"] = {"max_steps": 2, "accelerator": "cpu", "devices": 1, "enable_progress_bar": False,
                      "log_every_n_steps": 1}
    cfg["run"] = {"dir": str(run_dir)}
    cfg["validation"] = {"window": "chest", "panels": 1, "diversity": {"samples": 2}}
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return cfg
