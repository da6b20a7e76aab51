import pytest

from medgan.errors import ConfigError, InputError, MissingFileError, OutputExistsError
from medgan.inference.runner import Job, plan_jobs, shard


def test_single_scan_output_format_rules(tmp_path):
    scan = tmp_path / "ct.nrrd"
    scan.write_bytes(b"NRRD0004\n")
    assert plan_jobs(scan, tmp_path / "o.nii.gz")[0].format == "nifti"  # an image extension wins for 'same'
    job = plan_jobs(scan, tmp_path / "o")[0]
    assert (job.output.name, job.format) == ("o.nrrd", "nrrd")  # the input's format, extension appended
    job = plan_jobs(scan, tmp_path / "o", "mha")[0]
    assert (job.output.name, job.format) == ("o.mha", "mha")
    assert plan_jobs(scan, tmp_path / "series", "dicom")[0] == Job(scan, tmp_path / "series", "dicom")
    with pytest.raises(ConfigError, match="--format nifti"):
        plan_jobs(scan, tmp_path / "o.nrrd", "nifti")
    with pytest.raises(ConfigError, match="folder"):
        plan_jobs(scan, tmp_path / "o.nrrd", "dicom")
    with pytest.raises(ConfigError, match="--format"):
        plan_jobs(scan, tmp_path / "o.nrrd", "png")


def test_guards_run_before_anything_is_written(tmp_path):
    with pytest.raises(MissingFileError, match="missing.nrrd"):
        plan_jobs(tmp_path / "missing.nrrd", tmp_path / "o.nrrd")
    cases = tmp_path / "cases"
    cases.mkdir()
    with pytest.raises(InputError, match="holds no scan"):
        plan_jobs(cases, tmp_path / "out")
    with pytest.raises(InputError, match="inside the input folder"):
        plan_jobs(cases, cases / "out")
    (cases / "a.nrrd").write_bytes(b"x")
    (cases / "b.mha").write_bytes(b"x")
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.mha").write_bytes(b"old")
    with pytest.raises(OutputExistsError, match="b.mha"):
        plan_jobs(cases, out)
    assert [j.output.name for j in plan_jobs(cases, out, overwrite=True)] == ["a.nrrd", "b.mha"]
    # rank 0 of 2 only owns a.nrrd, so b.mha (rank 1's) existing is no reason to refuse
    assert [j.output.name for j in plan_jobs(cases, out, rank=0, world_size=2)] == ["a.nrrd"]


def test_shard_splits_cases_round_robin(monkeypatch):
    jobs = [Job(None, None, str(i)) for i in range(5)]  # type: ignore[arg-type]
    assert [j.format for j in shard(jobs, 1, 2)] == ["1", "3"]
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert [j.format for j in shard(jobs)] == ["2"]
    with pytest.raises(ConfigError, match="RANK"):
        shard(jobs, 3, 3)
