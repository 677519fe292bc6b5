"""pandas and NumPy instrumentation: seed span attributes and data metrics, same results, removable."""

import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal

from obslab.data import DataInstrumentor

CSV = "category,value\na,5\nb,12\na,20\nc,3\nb,40\n"


@pytest.fixture
def data(recorded, tmp_path):
    path = tmp_path / "data.csv"
    path.write_text(CSV)
    instrumentor = DataInstrumentor(recorded.handle.get_tracer("obslab.data"), recorded.handle.get_meter("obslab.data"))
    instrumentor.instrument(("pandas", "numpy"))
    yield recorded, path
    instrumentor.uninstrument()


def by_name(recorded):
    return {s.name: dict(s.attributes) for s in recorded.spans()}


def test_read_filter_groupby_and_numpy_are_traced_with_the_seed_attributes(data):
    recorded, path = data
    df = pd.read_csv(path)
    filtered = df[df["value"] > 10]
    filtered.groupby("category").mean()
    np.mean(df["value"])
    np.median(df["value"].to_numpy())
    spans = by_name(recorded)
    read = spans["pandas.read_csv"]
    assert (read["pandas.rows"], read["pandas.columns"]) == (5, 2) and read["pandas.memory_bytes"] > 0
    f = spans["pandas.filter"]
    assert (f["pandas.input_rows"], f["pandas.output_rows"], f["pandas.filtered_rows"]) == (5, 3, 2)
    g = spans["pandas.groupby.mean"]
    assert (g["pandas.input_rows"], g["pandas.output_rows"]) == (3, 2)
    assert spans["numpy.mean"]["numpy.input_size"] == 5 and spans["numpy.median"]["numpy.input_size"] == 5
    assert all(attrs["processing_time_ms"] >= 0 for attrs in spans.values())
    metrics = recorded.metrics()
    assert metrics["data.raw.rows"] == [({"operation": "read_csv"}, 5)]
    assert metrics["data.filtered.rows"] == [({"operation": "filter"}, 2)]
    assert dict((a["operation"], v) for a, v in metrics["data.processed.rows"]) == {"filter": 3, "groupby.mean": 2}
    assert {a["operation"] for a, _ in metrics["data.processing.time"]} >= {"read_csv", "filter", "numpy.mean"}
    assert metrics["data.size"][0][0] == {"operation": "read_csv"}


def test_results_and_dtypes_are_unchanged(data, tmp_path):
    recorded, path = data
    df = pd.read_csv(path)
    got = (df[df["value"] > 10], df.groupby("category").agg({"value": "sum"}), np.mean(df["value"]),
           df.groupby("category")["value"].median())
    plain = subprocess.run([sys.executable, "-c", f"""
import pickle, sys, numpy as np, pandas as pd
df = pd.read_csv({str(path)!r})
sys.stdout.buffer.write(pickle.dumps((df[df["value"] > 10], df.groupby("category").agg({{"value": "sum"}}),
    np.mean(df["value"]), df.groupby("category")["value"].median())))
"""], capture_output=True, check=True).stdout
    expected = pickle.loads(plain)
    assert_frame_equal(got[0], expected[0])
    assert_frame_equal(got[1], expected[1])
    assert got[2] == expected[2] and type(got[2]) is type(expected[2])
    assert_series_equal(got[3], expected[3])


def test_plain_column_access_is_not_a_span(data):
    recorded, path = data
    df = pd.read_csv(path)
    df["value"], df[["category"]]
    assert set(by_name(recorded)) == {"pandas.read_csv"}


def test_nested_library_calls_give_one_span(data):
    recorded, path = data
    df = pd.read_csv(path)
    df.groupby("category")["value"].agg(lambda values: np.mean(values))
    names = [s.name for s in recorded.spans()]
    assert names.count("pandas.groupby.agg") == 1 and "numpy.mean" not in names


def test_uninstrument_restores_the_original_functions(recorded):
    originals = (pd.read_csv, pd.DataFrame.__getitem__, np.mean, "mean" in vars(pd.core.groupby.DataFrameGroupBy))
    instrumentor = DataInstrumentor(recorded.handle.get_tracer("t"), recorded.handle.get_meter("t"))
    instrumentor.instrument(("pandas", "numpy"))
    assert pd.read_csv is not originals[0] and np.mean is not originals[2]
    instrumentor.uninstrument()
    assert (pd.read_csv, pd.DataFrame.__getitem__, np.mean,
            "mean" in vars(pd.core.groupby.DataFrameGroupBy)) == originals


def test_importing_obslab_imports_neither_pandas_nor_numpy():
    code = "import sys, obslab; obslab.init_telemetry('x', console_only=True); print('pandas' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# --- issue 10: a patched function returns what the library returns, whatever the telemetry does --


def test_numpy_called_with_keyword_arguments_returns_its_result(data):
    recorded, _ = data
    assert np.mean(a=[1, 2, 3]) == 2.0 and np.median(a=[3, 1, 2]) == 2.0
    spans = by_name(recorded)
    assert spans["numpy.mean"]["numpy.input_size"] == 3


def test_failing_telemetry_inside_a_patched_function_never_reaches_the_caller(recorded, tmp_path, monkeypatch):
    path = tmp_path / "data.csv"
    path.write_text(CSV)
    instrumentor = DataInstrumentor(recorded.handle.get_tracer("t"), recorded.handle.get_meter("t"))

    def broken(*args, **kwargs):
        raise RuntimeError("metric backend exploded")

    monkeypatch.setattr(instrumentor.processing_time, "record", broken)
    instrumentor.instrument(("pandas", "numpy"))
    try:
        df = pd.read_csv(path)
        assert len(df[df["value"] > 10]) == 3 and np.mean(df["value"]) == 16.0
        with pytest.raises(ValueError):  # the library's own errors still reach the caller, unchanged
            pd.read_csv(path, engine="nope")
    finally:
        instrumentor.uninstrument()
    assert {s.name for s in recorded.spans()} >= {"pandas.read_csv", "pandas.filter", "numpy.mean"}  # spans ended
