"""DDP training launched by torchrun: two CPU processes (gloo) agree with one process.

The test runs this file as the torchrun worker (``python -m torch.distributed.run --nproc_per_node 2
tests/test_distributed.py OUT``): each rank fits a tiny model on the same table with the same global
batch, rank 0 saves the weights. The test process fits the same model in one process and compares.

Tolerance. The sharded trainer draws every random number for the global batch exactly as one process
does and weights each rank's loss so that the averaged gradient *is* the one-process gradient
(:mod:`pydepmicro.model._distributed`); what differs is floating-point summation order (per-rank
partial sums, the gloo all-reduce, the encoder run on a slice rather than the whole batch), about
1e-7 relative per gradient in float32. AdamW steps are bounded by the learning rate (1e-3), so 50
steps move a weight by at most ~0.05 and a 1e-4 relative disagreement of the updates stays below
~5e-6: ``atol=2e-5, rtol=1e-4`` leaves headroom while a real mistake (a different batch, unsynced
gradients, other random draws) moves weights by ~1e-3 or more, which the control check shows.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

TINY = dict(d_z=2, vae_d_model=16, vae_layers=1, vae_heads=2, d_model=16, n_layers=1, n_heads=2, n_blocks=3,
            dependency="ftest", num_train_timesteps=100)
STEPS = dict(vae_steps=25, dat_steps=25, progress=False, batch_size=16, seed=0)


def _table():
    from pydepmicro.datasets import simulate

    table = simulate(48, 12, seed=3, zero_fraction=0.5).table
    counts = table.counts.copy()
    rng = np.random.default_rng(3)
    nonzero = np.argwhere(counts > 0)
    pick = nonzero[rng.choice(len(nonzero), size=20, replace=False)]
    counts[pick[:, 0], pick[:, 1]] = np.nan
    return table.with_counts(counts)


def _fit(**overrides):
    from pydepmicro.model import DepMicroDiff

    return DepMicroDiff(metadata=False, device="cpu", **TINY).fit(_table(), **{**STEPS, **overrides})


def _state(model) -> dict[str, torch.Tensor]:
    # empty buffers (the metadata base of a model without one) hold nothing to compare
    return {k: v.detach().clone() for k, v in model.module.state_dict().items() if v.numel()}


def _worker(out: str) -> None:
    """Runs under torchrun: fit, rank 0 saves the weights and history (save() itself skips other ranks)."""
    model = _fit()
    assert model.training["fit"]["world_size"] == int(os.environ["WORLD_SIZE"])
    written = model.save(Path(out) / "model", force=True)
    if int(os.environ["RANK"]) == 0:
        assert written
        torch.save({"state": _state(model), "history": model.history}, Path(out) / "rank0.pt")
    else:
        assert written == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gloo_ok() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_gloo_available()


@pytest.mark.skipif(not _gloo_ok(), reason="torch.distributed with the gloo backend is not available")
def test_two_gloo_processes_agree_with_one(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), __file__, str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    got = torch.load(tmp_path / "rank0.pt")
    assert (tmp_path / "model" / "config.json").exists()

    one = _fit()
    ref = _state(one)
    assert set(got["state"]) == set(ref)
    worst = max(float((got["state"][k].double() - ref[k].double()).abs().max()) for k in ref)
    for k in ref:
        torch.testing.assert_close(got["state"][k], ref[k], atol=2e-5, rtol=1e-4, msg=lambda m, k=k: f"{k}: {m}")
    # the recorded losses are the global ones
    for a, b in zip(got["history"], one.history):
        assert a["phase"] == b["phase"] and a["step"] == b["step"]
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4, abs=1e-6)

    # control: one process with half the batch (what each rank computes) is far outside the tolerance
    half = _state(_fit(batch_size=8))
    off = max(float((half[k].double() - ref[k].double()).abs().max()) for k in ref)
    print(f"max |2 procs - 1 proc| = {worst:.2e}; half batch control = {off:.2e}")
    assert off > 100 * max(worst, 1e-7), (off, worst)


@pytest.mark.skipif(not _gloo_ok(), reason="torch.distributed with the gloo backend is not available")
def test_cli_under_torchrun_writes_once(tmp_path):
    """`torchrun -m pydepmicro.cli impute` (training on the table): rank 0 alone imputes and writes."""
    from pydepmicro.io import write_table

    table = _table()
    write_table(table.with_metadata(table.sample_meta.iloc[:, :0]), tmp_path / "t.tsv")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    tiny = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}") if k != "dependency"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "pydepmicro.cli", "impute", str(tmp_path / "t.tsv"),
           "-o", str(tmp_path / "out.tsv"), "--save-model", str(tmp_path / "m"), "--dependency", "ftest",
           "--vae-steps", "5", "--dat-steps", "5", "--draws", "2", "--sampler", "ddim:3", "--quiet", "--device", "cpu",
           *tiny]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert proc.stdout.count("wrote ") == 1, proc.stdout
    assert (tmp_path / "out.tsv").exists() and (tmp_path / "m" / "config.json").exists()
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert '"world_size": 2' in json.dumps(config)


def test_diffusion_error_matches_diffusion_loss():
    """The sharded trainer's copy of ``diffusion_loss`` (with given draws) gives the same error."""
    from pydepmicro.model._distributed import diffusion_error

    model = _fit(vae_steps=2, dat_steps=2)
    module, sched = model.module, model.scheduler()
    table = _table()
    from pydepmicro.model import _data

    prep = _data.prepare(table, scale=100.0, log_base=np.e)
    y, obs = prep.y[:10], prep.observed[:10]
    with torch.no_grad():
        z0, tc = module.encode(y, obs), module.token_condition(y, obs)
        a = module.diffusion_loss(z0, tc, sched, generator=torch.Generator().manual_seed(5))
        g = torch.Generator().manual_seed(5)
        t = torch.randint(0, sched.num_train_timesteps, (10,), generator=g)
        noise = torch.randn(z0.shape, generator=g, dtype=z0.dtype)
        b = diffusion_error(module, z0, tc, sched, t, noise)
    assert torch.equal(a, b)


def test_single_process_ignores_distributed_helpers(monkeypatch):
    from pydepmicro.model import _distributed

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx, dev = _distributed.setup(torch.device("cpu"))
    assert ctx is None and dev == torch.device("cpu")
    assert _distributed.is_main_process()
    monkeypatch.setenv("RANK", "1")
    assert not _distributed.is_main_process()


def test_shards_cover_the_batch_and_small_batches_are_refused():
    from pydepmicro.errors import InvalidOptionError
    from pydepmicro.model._distributed import DistContext

    batch = torch.arange(7)
    parts = [DistContext(rank=r, world_size=3, device=torch.device("cpu")).shard(batch) for r in range(3)]
    assert torch.equal(torch.cat(parts), batch) and [len(p) for p in parts] == [3, 2, 2]
    with pytest.raises(InvalidOptionError, match="at least 3"):
        DistContext(rank=0, world_size=3, device=torch.device("cpu")).check_batch(2)


if __name__ == "__main__":
    torch.set_num_threads(1)
    _worker(sys.argv[1])
