import pickle

import numpy as np
import pytest

import finegrain.data.cache as cache_module
from finegrain.data.cache import DecodeCache, default_cache_dir
from finegrain.data.images import decode_image, resize_square

from .conftest import write_image


@pytest.fixture
def count_decodes(monkeypatch):
    calls = []
    real = cache_module.decode_image

    def counting(path, *args, **kwargs):
        calls.append(path.name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(cache_module, "decode_image", counting)
    return calls


@pytest.fixture
def files(tmp_path):
    return [write_image(tmp_path / "src" / f"{i}.jpg", seed=i, size=(40, 60)) for i in range(5)]


def test_load_rows_match_decode(files, cache_dir):
    images = DecodeCache(cache_dir, 32).load(files)
    assert len(images) == 5 and images.paths == files and images.problems == []
    assert images.indices.tolist() == [0, 1, 2, 3, 4]
    for i, path in enumerate(files):
        row = images[i]
        assert row.shape == (32, 32, 3) and row.dtype == np.uint8
        assert np.array_equal(row, resize_square(decode_image(path), 32))
    bulk = images.array()
    assert bulk.shape == (5, 32, 32, 3) and bulk.dtype == np.uint8
    assert np.array_equal(bulk[3], images[3])
    assert (cache_dir / "images_32.u8").stat().st_size == 5 * 32 * 32 * 3


def test_second_load_decodes_nothing(files, cache_dir, count_decodes):
    first = DecodeCache(cache_dir, 32).load(files)
    assert len(count_decodes) == 5
    second = DecodeCache(cache_dir, 32).load(files)  # a fresh object: state comes from disk
    assert len(count_decodes) == 5
    assert second.rows.tolist() == first.rows.tolist()
    assert np.array_equal(second.array(), first.array())


def test_changed_file_redecodes_only_itself(files, cache_dir, count_decodes):
    cache = DecodeCache(cache_dir, 32)
    first = cache.load(files)
    before = first[2]
    write_image(files[2], seed=99, size=(40, 60))
    count_decodes.clear()
    second = cache.load(files)
    assert count_decodes == ["2.jpg"]
    assert second.rows.tolist()[:2] == first.rows.tolist()[:2]
    assert second.rows[2] == 5  # appended; the old row stays for readers still using it
    assert not np.array_equal(second[2], before)
    assert np.array_equal(first[2], before)


def test_identical_files_share_a_row(files, tmp_path, cache_dir, count_decodes):
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(files[0].read_bytes())
    images = DecodeCache(cache_dir, 32).load([files[0], copy, files[1]])
    assert images.rows[0] == images.rows[1] != images.rows[2]
    assert len(count_decodes) == 2


def test_problems_collected_in_input_order(bad_tree, files, cache_dir):
    paths = [files[0], bad_tree.odd / "empty.jpg", files[1], bad_tree.odd / "missing.jpg"]
    paths += [bad_tree.odd / "not_image.jpg", bad_tree.odd / "gray.png"]
    images = DecodeCache(cache_dir, 16).load(paths, progress=False)
    assert images.paths == [files[0], files[1], bad_tree.odd / "gray.png"]
    assert images.indices.tolist() == [0, 2, 5]
    assert [(p.path.name, p.reason) for p in images.problems] == [
        ("empty.jpg", "empty file"),
        ("missing.jpg", "file not found"),
        ("not_image.jpg", "not an image or unsupported format"),
    ]


def test_sizes_are_separate_and_limits_rechecked(files, cache_dir, count_decodes):
    DecodeCache(cache_dir, 32).load(files)
    DecodeCache(cache_dir, 16).load(files)
    assert len(count_decodes) == 10
    strict = DecodeCache(cache_dir, 32, min_side=41).load(files)  # cached under min_side 8
    assert len(strict) == 0 and len(count_decodes) == 10
    assert "image too small (60×40, minimum 41 px)" in strict.problems[0].reason


def test_stale_index_is_ignored(files, cache_dir, count_decodes):
    cache = DecodeCache(cache_dir, 32)
    cache.load(files)
    (cache_dir / "images_32.u8").unlink()
    images = cache.load(files)
    assert len(count_decodes) == 10
    assert images.rows.tolist() == [0, 1, 2, 3, 4]
    (cache_dir / "index_32.json").write_text("{corrupt")
    assert len(cache.load(files)) == 5


def test_partial_row_is_padded_not_truncated(files, cache_dir):
    cache = DecodeCache(cache_dir, 32)
    first = cache.load(files[:2])
    with open(cache_dir / "images_32.u8", "ab") as f:
        f.write(b"\x01" * 100)  # a writer that died mid-row
    second = cache.load(files)
    assert second.rows.tolist() == [0, 1, 3, 4, 5]
    assert np.array_equal(second[0], first[0])
    assert np.array_equal(second[2], resize_square(decode_image(files[2]), 32))


def test_pickle_ships_no_pixels(files, cache_dir):
    images = DecodeCache(cache_dir, 32).load(files)
    images.array()  # opens the memmap
    blob = pickle.dumps(images)
    assert len(blob) < 5 * 32 * 32 * 3
    assert np.array_equal(pickle.loads(blob)[4], images[4])


def test_subset_and_copies(files, cache_dir):
    images = DecodeCache(cache_dir, 32).load(files)
    sub = images.subset([4, 1])
    assert sub.paths == [files[4], files[1]] and sub.indices.tolist() == [4, 1]
    row = sub[0]
    row[:] = 0  # items are copies: the cache is untouched
    assert images[4].any()


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("FINEGRAIN_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("FINEGRAIN_CACHE")
    assert default_cache_dir().parts[-2:] == (".cache", "finegrain")


def test_concurrent_writers_keep_rows_consistent(tmp_path, cache_dir):
    from concurrent.futures import ThreadPoolExecutor

    sets = [
        [write_image(tmp_path / f"w{w}" / f"{i}.png", seed=100 * w + i) for i in range(40)] for w in range(2)
    ]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda s: DecodeCache(cache_dir, 16, workers=1).load(s, progress=False), sets))
    everything = DecodeCache(cache_dir, 16).load(sets[0] + sets[1])
    assert sorted(everything.rows.tolist()) == list(range(80))
    for i, path in enumerate(everything.paths):
        assert np.array_equal(everything[i], resize_square(decode_image(path), 16))
