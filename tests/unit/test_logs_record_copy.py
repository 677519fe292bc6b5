"""The OTLP handler's view of a record (obslab.logs._otlp_record, made cheap for the benchmark's
log path) is exactly the reference flattening, whatever extra fields a record carries, and never
changes the application's record. Differential property test against the straightforward version."""

from __future__ import annotations

import logging

from hypothesis import given, strategies as st

from obslab import logs


def reference(record: logging.LogRecord) -> dict:
    """The flattening as first written: every field looked at, ``data`` flattened."""
    fields = {}
    for key, value in vars(record).items():
        if key in logs._STDLIB_FIELDS:
            fields[key] = value
        elif key == "data" and isinstance(value, dict):
            fields.update((f"data.{k}" if k in logs._STDLIB_FIELDS else str(k), logs._attribute_value(v))
                          for k, v in value.items())
        elif key == "data" or key not in logs._ADDED_FIELDS:
            fields[key] = logs._attribute_value(value)
    return fields


class FactoryRecord(logging.LogRecord):
    def __init__(self, *args, **kwargs):
        self.tenant = "acme"  # a record factory's own field, set before the standard ones
        super().__init__(*args, **kwargs)


values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5), st.floats(allow_nan=False),
                   st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
keys = st.sampled_from(["data", "user", "k", "msg", "trace_id", "otelSpanID", "message", "asctime", "x.y"])


@given(extra=st.dictionaries(keys, values, max_size=5), data=st.dictionaries(st.sampled_from(["k", "name", "lineno", "z"]),
       values, max_size=3), with_data=st.booleans(), factory=st.booleans(), formatted=st.booleans())
def test_the_handlers_view_of_a_record_is_the_reference_flattening(extra, data, with_data, factory, formatted):
    extra = {k: v for k, v in extra.items() if k not in ("message", "asctime", "msg")}  # makeRecord refuses them
    if with_data:
        extra["data"] = data
    cls = FactoryRecord if factory else logging.LogRecord
    record = cls("app", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    for key, value in extra.items():
        record.__dict__[key] = value  # as Logger.makeRecord adds extra fields
    if formatted:
        logging.Formatter("%(asctime)s %(message)s").format(record)  # an earlier handler formatted it
    before = dict(vars(record))
    view = logs._otlp_record(record)
    assert vars(view) == reference(record)
    assert vars(record) == before  # the application's record is untouched
