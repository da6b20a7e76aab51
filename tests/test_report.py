"""Reports: the run page of medgan-report from a run folder's own files, and both pages rendered by a real
browser (headless Chromium) with every inlined image decoded."""

import re
import shutil
import subprocess

import numpy as np
import pytest

from medgan.cli.report import main as report_main
from medgan.report import png_data_uri


@pytest.fixture
def run_dir(tmp_path):
    """A run folder as medgan-train leaves it: Lightning's metrics.csv, config.yaml, samples/val_step*.png."""
    from medgan.figures import save_panel

    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    rows = ["epoch,step,train/loss_g,train/lr,val/input_ssim,val/psnr,val/ssim,val/rmse,val/input_psnr,val/input_rmse"]
    for step in range(1, 7):
        rows.append(f"0,{step},{1.0 / step:.4f},0.0002,,,,,,")
        if step % 2 == 0:
            rows.append(f"0,{step},,,0.80,{30 + step},{0.8 + step / 100:.2f},{40 - step},29.0,45.0")
    (run / "metrics.csv").write_text("\n".join(rows) + "\n")
    (run / "config.yaml").write_text("recipe:\n  name: supervised\nseed: 0\n")
    rng = np.random.default_rng(0)
    for step in (2, 4, 6):
        target = rng.normal(-500, 200, (32, 32))
        save_panel(run / "samples" / f"val_step{step:07d}.png",
                   [{"input": target + 50, "output": target + 10, "target": target}], (-1350, 150))
    return run


def test_run_report_shows_curves_panels_metrics_and_config(run_dir, capsys):
    assert report_main([str(run_dir)]) == 0
    html = (run_dir / "report.html").read_text()
    assert "wrote" in capsys.readouterr().out
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 4  # validation curves, loss curves, the 2 latest panels
    assert "val_step0000006.png" in html and "val_step0000004.png" in html and "val_step0000002.png" not in html
    assert "best validation SSIM 0.8600 at step 6" in html
    assert "recipe:\n  name: supervised" in html and "http" not in html.replace("http-equiv", "")


def test_report_refuses_what_is_not_a_run(tmp_path, capsys):
    assert report_main([str(tmp_path / "nope")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert report_main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "neither metrics.csv nor config.yaml" in err


def test_data_uri_round_trips_png_bytes(tmp_path):
    import base64

    png = b"\x89PNG\r\n\x1a\nxyz"
    assert base64.b64decode(png_data_uri(png).split(",", 1)[1]) == png


# -- a real browser ------------------------------------------------------------------------------------------
PROBE = """<script>
window.addEventListener('load', () => {
  const out = document.createElement('pre'); out.id = 'probe';
  out.textContent = Array.from(document.images).map(i => i.complete + ':' + i.naturalWidth + 'x' + i.naturalHeight).join(' ')
    + ' | tables ' + document.querySelectorAll('table tr').length;
  document.body.appendChild(out);
});
</script></body>"""


def _chromium():
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("chromium is not on PATH (make test installs it: Debian package chromium)")
    return exe


def _render(exe, html_path, tmp_path):
    """Decoded image sizes and table rows (via a probe script in a copy of the page) and a screenshot."""
    probe = tmp_path / "probe.html"
    probe.write_text(html_path.read_text().replace("</body>", PROBE))
    flags = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,2000", html_path.as_uri()],
                   capture_output=True, timeout=120, check=True)
    found = re.search(r'<pre id="probe">(.*?) \| tables (\d+)</pre>', dom, re.S)
    assert found, dom[-2000:]
    sizes = [tuple(int(v) for v in s.split(":")[1].split("x")) for s in found.group(1).split()]
    return sizes, int(found.group(2)), shot


def _not_blank(shot):
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (2000, 1200)
    # not a white page: text, tables and figures cover part of it, and some of it is dark (text, CT air)
    assert pixels.std() > 20 and (pixels < 250).mean() > 0.05 and (pixels < 100).mean() > 0.005


@pytest.mark.slow
def test_chromium_renders_the_run_report(run_dir, tmp_path):
    exe = _chromium()
    report_main([str(run_dir)])
    sizes, rows, shot = _render(exe, run_dir / "report.html", tmp_path)
    assert len(sizes) == 4 and all(w > 100 and h > 100 for w, h in sizes)
    assert rows == 4  # header + ssim, psnr, rmse
    _not_blank(shot)


@pytest.mark.slow
def test_chromium_renders_the_eval_report(tmp_path):
    import SimpleITK as sitk

    from medgan.cli.eval import main as eval_main

    exe = _chromium()
    rng = np.random.default_rng(0)
    clean = np.full((2, 48, 48), 40, dtype=np.int16)
    clean[:, 12:36, 10:30] = -700
    paths = []
    for name, array in (("full", clean), ("low", clean + rng.normal(0, 60, clean.shape))):
        image = sitk.GetImageFromArray(array.astype(np.int16))
        sitk.WriteImage(image, str(tmp_path / f"{name}.nrrd"))
        paths.append(str(tmp_path / f"{name}.nrrd"))
    out = tmp_path / "eval"
    assert eval_main(["--target", paths[0], "--input", paths[1], "--baselines", "gaussian,nlm", "--bm3d-sigma", "60",
                      "--output", str(out), "--no-progress"]) == 0
    sizes, rows, shot = _render(exe, out / "report.html", tmp_path)
    assert len(sizes) == 2 and all(w > 200 and h > 100 for w, h in sizes)  # box plots, one case panel
    assert rows == (1 + 3) + (1 + 3)  # summary: header + 3 methods; cases: header + 3 rows
    _not_blank(shot)
