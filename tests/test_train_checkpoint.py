from __future__ import annotations

import pickle
import sys
from fractions import Fraction

import pytest
import torch

from st3d_edge.errors import St3dError
from st3d_edge.train.checkpoint import load_checkpoint, save_checkpoint
from tests.helpers import EXACT, assert_close


def test_roundtrip_with_optimizer_and_rng(tmp_path):
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.ones(4, 3)).sum().backward()
    opt.step()
    state = {
        "model": net.state_dict(),
        "optimizer": opt.state_dict(),
        "epoch": 3,
        "best": 0.5,
        "rng": torch.get_rng_state(),
        "history": [1.0, 0.5],
    }
    path = save_checkpoint(tmp_path / "last.pt", state)
    back = load_checkpoint(path)
    assert back["epoch"] == 3 and back["history"] == [1.0, 0.5]
    assert torch.equal(back["rng"], state["rng"])
    for key, value in state["model"].items():
        assert_close(back["model"][key].numpy(), value.numpy(), **EXACT, what=key)
    opt2 = torch.optim.Adam(net.parameters(), lr=1e-3)
    opt2.load_state_dict(back["optimizer"])
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary left behind


def test_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"x": Fraction(1, 3)}, path)  # any class outside torch's allow-list
    with pytest.raises(St3dError, match=r"evil\.pt: corrupt or truncated checkpoint"):
        load_checkpoint(path)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_missing_and_damaged(tmp_path):
    with pytest.raises(St3dError, match=r"nope\.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(pickle.dumps([1, 2]) + b"xx")
    with pytest.raises(St3dError, match=r"junk\.pt: corrupt or truncated checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_failed_save_keeps_old_file(tmp_path):
    path = save_checkpoint(tmp_path / "last.pt", {"epoch": 1})
    with pytest.raises((AttributeError, pickle.PicklingError)):
        save_checkpoint(path, {"epoch": 2, "bad": lambda: None})
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_missing_torch_names_the_extra(tmp_path, monkeypatch):
    from st3d_edge.config import get_preset
    from st3d_edge.errors import MissingExtraError
    from st3d_edge.train.common import build_net

    save_checkpoint(tmp_path / "x.pt", {"epoch": 1})
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails as if not installed
    calls = [
        lambda: build_net(get_preset("tiny").model),
        lambda: save_checkpoint(tmp_path / "y.pt", {}),
        lambda: load_checkpoint(tmp_path / "x.pt"),
    ]
    for call in calls:
        with pytest.raises(MissingExtraError, match=r"torch is not installed.*st3d-edge\[train\]"):
            call()


def test_truncated_checkpoint_is_one_line_without_torch_advice(tmp_path):
    path = save_checkpoint(tmp_path / "last.pt", {"epoch": 1, "w": torch.ones(1000)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(St3dError, match=r"last\.pt: corrupt or truncated checkpoint .*--overwrite") as info:
        load_checkpoint(path)
    assert "weights_only" not in str(info.value) and "\n" not in str(info.value)
