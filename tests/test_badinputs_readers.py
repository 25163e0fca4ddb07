"""Every bad-input corpus item through the readers: clear InputErrors, counted skips, strict mode."""

from __future__ import annotations

import time

import pytest
from badinputs import CORPUS_NAMES, BadInput, make_corpus

from crystograph.errors import InputError
from crystograph.structures import read_structure, read_structures, validate_structure


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[BadInput]:
    return make_corpus(tmp_path_factory.mktemp("badinputs"))


@pytest.fixture(params=CORPUS_NAMES)
def item(request, corpus) -> BadInput:
    return next(i for i in corpus if i.name == request.param)


def test_corpus_is_documented(corpus):
    assert [i.name for i in corpus] == list(CORPUS_NAMES)
    for i in corpus:
        assert i.path.exists() or i.path.is_symlink(), i.name
        assert i.expect in ("valid", "reject") and i.stage in ("read", "graph", None)
        assert (i.stage is None) == i.valid
        assert i.description
        if not i.valid:
            assert i.reason


def test_batch_counts(item):
    result = read_structures(item.path, **item.read_kwargs)
    assert (len(result.records), len(result.skipped)) == (item.n_records, item.n_skipped), result.summary()
    if item.stage == "read":
        (skip,) = result.skipped
        assert str(item.path) in skip.source
        assert item.where in skip.source
        assert item.reason.lower() in skip.reason.lower(), skip.reason
        assert f"skipped {item.n_skipped}" in result.summary()


def test_strict_raises_first_error(item):
    if item.stage != "read":
        result = read_structures(item.path, strict=True, **item.read_kwargs)
        assert len(result.records) == item.n_records
        return
    with pytest.raises(InputError) as exc:
        read_structures(item.path, strict=True, **item.read_kwargs)
    assert str(item.path) in exc.value.source and item.where in exc.value.source
    assert item.reason.lower() in str(exc.value).lower()


def test_read_structure_single_files(item):
    if item.kind != "structure":
        pytest.skip("tables and folders hold several structures")
    if item.stage == "read":
        with pytest.raises(InputError) as exc:
            read_structure(item.path)
        assert exc.value.source == str(item.path)
        assert item.reason.lower() in exc.value.reason.lower()
    else:
        assert len(read_structure(item.path)) >= 1


@pytest.mark.slow
def test_all_items_in_one_batch(corpus):
    """A list of every corpus path: nothing vanishes, and the summary counts reasons."""
    paths = [i.path for i in corpus if not i.read_kwargs]
    result = read_structures(paths)
    expected = [i for i in corpus if not i.read_kwargs]
    assert len(result.records) == sum(i.n_records for i in expected)
    assert len(result.skipped) == sum(i.n_skipped for i in expected)
    summary = result.summary()
    assert summary.startswith(f"read {len(result.records)}, skipped {len(result.skipped)}: ")
    assert "unknown format" in summary and "overlapping atoms" in summary


def test_reasons_are_specific(corpus):
    by_name = {i.name: i for i in corpus}

    def reason(name):
        return read_structures(by_name[name].path).skipped[0].reason

    assert "site 0 has partial occupancy {Fe:0.5, Co:0.5}" in reason("partial_occupancy")
    assert "OrderDisorderedStructureTransformation" in reason("partial_occupancy")
    assert "sites 1 (Cl) and 2 (Cl) are 0.200 Å apart" in reason("overlapping_atoms")
    assert "X0+" in reason("dummy_species") and "Md" in reason("element_z_gt_100")
    assert ".cif" in reason("wrong_extension_txt") and ".csv" in reason("wrong_extension_txt")
    assert "'five'" in reason("malformed_cif")


def test_fmt_override_reads_wrong_extension(corpus):
    txt = next(i for i in corpus if i.name == "wrong_extension_txt")
    assert read_structure(txt.path, fmt="cif").composition.reduced_formula == "NaCl"


@pytest.mark.slow
def test_big_cell_validation_scales_linearly(corpus):
    """Validation is O(n): 8x the atoms costs well under the 64x of an all-pairs check (best of 3, one run)."""
    big = read_structure(next(i for i in corpus if i.name == "big_3000_atoms").path, validate=False)
    assert len(big) == 3000
    small = big.copy()
    small.remove_sites(list(range(375, 3000)))

    def best(structure) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            validate_structure(structure, "cell")
            times.append(time.perf_counter() - t0)
        return min(times)

    assert best(big) / best(small) < 24


def test_no_warning_spam(corpus, recwarn):
    read_structures([i.path for i in corpus if not i.read_kwargs and i.name != "big_3000_atoms"])
    assert not [w for w in recwarn if "pymatgen" in (w.filename or "")]


# --- issue 11: wrong answers reported as success, folder entries that vanished ----------------------------
def test_poscar_species_from_potcar_or_option(tmp_path):
    from badinputs import POSCAR_VASP4

    poscar = tmp_path / "POSCAR"
    poscar.write_text(POSCAR_VASP4)
    with pytest.raises(InputError, match="species line") as exc:
        read_structure(poscar)  # never H and He
    assert exc.value.source == str(poscar)
    assert read_structures(poscar, species=["Na", "Cl"]).records[0].structure.composition.reduced_formula == "NaCl"
    with pytest.raises(InputError, match="2 species counts but 1"):
        read_structures(poscar, species=["Na"], strict=True)
    (tmp_path / "POTCAR").write_text("  PAW_PBE Na_pv 19Sep2006\n   TITEL  = PAW_PBE Na_pv 19Sep2006\n"
                                     "  PAW_PBE Cl 06Sep2000\n   TITEL  = PAW_PBE Cl 06Sep2000\n")
    assert read_structure(poscar).composition.reduced_formula == "NaCl"


def test_folder_lists_ignored_entries_and_recurses_on_request(corpus):
    folder = next(i for i in corpus if i.name == "folder_with_extras").path
    result = read_structures(folder)
    assert sorted(i.source.rsplit("/", 1)[1] for i in result.ignored) == [".hidden.cif", "sub"]
    assert "subfolder" in str(result.ignored) and "ignored 2 folder entries" in result.summary()
    deep = read_structures(folder, recursive=True)
    assert sorted(r.id for r in deep.records) == ["good", "nested"] and len(deep.ignored) == 1


def test_long_pymatgen_reason_keeps_its_end():
    from crystograph.structures.parsing import _shorten

    text = "malformed CIF: " + "noise " * 100 + "the key detail"
    short = _shorten(text)
    assert len(short) <= 300 and short.startswith("malformed CIF") and short.endswith("the key detail")
