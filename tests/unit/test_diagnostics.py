import logging

from obslab._diagnostics import RateLimitFilter


def _record(msg: str) -> logging.LogRecord:
    try:
        raise ConnectionError("down")
    except ConnectionError:
        import sys
        return logging.makeLogRecord({"msg": msg, "levelno": logging.ERROR, "exc_info": sys.exc_info()})


def test_export_errors_print_one_short_line_per_signal_per_interval():
    f = RateLimitFilter(interval=60)
    traces = [f.filter(_record("Failed to export traces to x")) for _ in range(100)]
    logs = [f.filter(_record("Failed to export logs to x")) for _ in range(100)]
    assert traces.count(True) == 1 and logs.count(True) == 1
    kept = _record("Failed to export metrics to x\nsecond line")
    assert f.filter(kept)
    assert kept.exc_info is None and "\n" not in kept.getMessage()
