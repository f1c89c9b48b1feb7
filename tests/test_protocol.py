import numpy as np
import pytest
import torch

from verl.protocol import DataProto


def make(n=6):
    return DataProto.from_dict(
        tensors={"x": torch.arange(n * 2).view(n, 2), "y": torch.arange(n).float()},
        non_tensors={"name": [f"t{i}" for i in range(n)], "blob": [bytes([i]) * i for i in range(n)]},
        meta_info={"temperature": 1.6},
    )


def test_len_getitem_and_select():
    d = make()
    assert len(d) == 6
    assert d["x"].shape == (6, 2)
    assert list(d["name"]) == [f"t{i}" for i in range(6)]
    s = d.select(batch_keys=["y"], non_tensor_keys=["name"])
    assert s.tensor_keys() == ["y"] and list(s.non_tensor_batch) == ["name"]
    assert s.meta_info == {"temperature": 1.6}
    with pytest.raises(KeyError, match="unknown batch keys"):
        d.select(batch_keys=["nope"])


def test_mismatched_batch_sizes_rejected():
    with pytest.raises(ValueError, match="batch size"):
        DataProto.from_dict(tensors={"x": torch.zeros(3)}, non_tensors={"n": ["a", "b"]})


def test_index_by_mask_ints_and_slice():
    d = make()
    mask = np.array([True, False, True, False, False, True])
    m = d.index(mask)
    assert m["y"].tolist() == [0.0, 2.0, 5.0]
    assert list(m["name"]) == ["t0", "t2", "t5"]
    assert d.index(torch.tensor([4, 1]))["y"].tolist() == [4.0, 1.0]
    assert d.index(slice(1, 3))["y"].tolist() == [1.0, 2.0]
    with pytest.raises(ValueError):
        d.index(np.array([True, False]))


def test_repeat_interleaved_and_tiled():
    d = make(3)
    r = d.repeat(2)
    assert r["y"].tolist() == [0, 0, 1, 1, 2, 2]
    assert list(r["name"]) == ["t0", "t0", "t1", "t1", "t2", "t2"]
    t = d.repeat(2, interleave=False)
    assert t["y"].tolist() == [0, 1, 2, 0, 1, 2]


def test_chunk_split_concat_roundtrip():
    d = make(6)
    parts = d.chunk(3)
    assert [len(p) for p in parts] == [2, 2, 2]
    back = DataProto.concat(parts)
    assert torch.equal(back["x"], d["x"]) and list(back["blob"]) == list(d["blob"])
    assert [len(p) for p in d.split(4)] == [4, 2]
    with pytest.raises(ValueError, match="not divisible"):
        d.chunk(4)


def test_union_merges_and_detects_conflicts():
    d = make(3)
    other = DataProto.from_dict(
        tensors={"z": torch.ones(3)}, non_tensors={"name": ["t0", "t1", "t2"]}, meta_info={"step": 2}
    )
    u = d.union(other)
    assert set(u.tensor_keys()) == {"x", "y", "z"} and u.meta_info == {"temperature": 1.6, "step": 2}
    bad = DataProto.from_dict(tensors={"y": torch.zeros(3)})
    with pytest.raises(ValueError, match="'y'"):
        d.union(bad)


def test_nbytes_counts_bytes_objects():
    d = make(3)
    assert d.nbytes() == 3 * 2 * 8 + 3 * 4 + (0 + 1 + 2) + sum(
        np.asarray(s).nbytes for s in ["t0", "t1", "t2"]
    )


@pytest.mark.ray
def test_survives_ray_object_store(ray_local):
    ray = ray_local

    @ray.remote
    def double(data: DataProto) -> DataProto:
        out = DataProto.from_dict(
            tensors={"x2": data["x"] * 2}, non_tensors={"name": data["name"]}, meta_info=data.meta_info
        )
        return data.union(out)

    d = make(4)
    out = ray.get(double.remote(d))
    assert torch.equal(out["x2"], d["x"] * 2)
    assert list(out["blob"]) == list(d["blob"]) and out.meta_info["temperature"] == 1.6
    ref = ray.put(d)
    assert torch.equal(ray.get(ref)["y"], d["y"])
