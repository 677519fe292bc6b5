"""An ETL pipeline on generated sales data, traced and measured by obslab's pandas/NumPy instrumentation.

Run: python examples/etl/main.py [--runs N] [--rows N] [--interval SECONDS] [--service-name NAME]
Each run extracts a CSV, filters and aggregates it, and loads the result; it prints one JSON line:
{"run", "trace_id", "rows_in", "rows_kept", "groups"}. The "Data Pipeline" dashboard shows it.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from obslab import auto_instrument, traced

log = logging.getLogger("etl")
REGIONS = ("north", "south", "east", "west")


def generate(path: Path, rows: int, seed: int) -> None:
    """Write a CSV of fake sales (the pipeline's source)."""
    rng = np.random.default_rng(seed)
    pd.DataFrame({
        "region": rng.choice(REGIONS, rows),
        "amount": rng.gamma(2.0, 40.0, rows).round(2),
        "quantity": rng.integers(1, 10, rows),
    }).to_csv(path, index=False)


@traced(name="etl.extract")
def extract(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)


@traced(name="etl.transform")
def transform(sales: pd.DataFrame) -> pd.DataFrame:
    large = sales[sales["amount"] > 50]  # boolean-mask filter: pandas.filter span
    summary = large.groupby("region").agg({"amount": "sum", "quantity": "sum"})
    summary["mean_amount"] = large.groupby("region")["amount"].mean()
    log.info("transform done", extra={"data": {"rows_in": len(sales), "rows_kept": len(large),
                                               "median_amount": float(np.median(large["amount"].to_numpy())),
                                               "mean_amount": float(np.mean(large["amount"].to_numpy()))}})
    return summary


@traced(name="etl.load")
def load(summary: pd.DataFrame, out: Path) -> None:
    summary.to_csv(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--service-name", default="etl-pipeline")
    args = parser.parse_args()
    telemetry = auto_instrument(args.service_name, service_version="1.0.0", environment="development",
                                instrument=["pandas", "numpy"], enable_console_export=False)
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            source, out = Path(tmp, f"sales-{run}.csv"), Path(tmp, f"summary-{run}.csv")
            generate(source, args.rows, seed=run)
            with telemetry.span("etl.run", **{"etl.run": run}) as span:
                sales = extract(source)
                summary = transform(sales)
                load(summary, out)
                log.info("etl run finished", extra={"data": {"run": run, "groups": len(summary)}})
            trace_id = f"{span.get_span_context().trace_id:032x}"
            kept = int((sales["amount"] > 50).sum())
            print(json.dumps({"run": run, "trace_id": trace_id, "rows_in": len(sales), "rows_kept": kept,
                              "groups": len(summary)}), flush=True)
            if run + 1 < args.runs:
                telemetry.force_flush()
                __import__("time").sleep(args.interval)
    telemetry.shutdown()


if __name__ == "__main__":
    main()
