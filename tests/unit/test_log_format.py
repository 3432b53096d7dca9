import json
import logging
import sys

from shared.log import CloudLoggingFormatter, bind_request


def test_lines_are_cloud_logging_json_with_trace_and_fields():
    bind_request("req-1", "a" * 32, "b" * 16)
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "something happened", None, None)
    record.fields = {"patient_id": "123"}
    line = json.loads(CloudLoggingFormatter().format(record))
    assert line["severity"] == "WARNING"
    assert line["message"] == "something happened"
    assert line["logging.googleapis.com/trace"].endswith("/traces/" + "a" * 32)
    assert line["request_id"] == "req-1"
    assert line["patient_id"] == "123"


def test_exception_text_is_not_logged_only_its_type_and_location():
    try:
        raise ValueError("Jane Doe born 1980-05-06")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    out = CloudLoggingFormatter().format(record)
    assert "Jane" not in out and "1980" not in out
    assert "builtins.ValueError" in json.loads(out)["error"]


def test_terminal_colour_codes_never_reach_a_json_line():
    # What Werkzeug logs when it restarts a reloading server ("Detected change …" in bold).
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, "\x1b[1m\x1b[33m * Detected change, reloading\x1b[0m",
                               None, None)
    out = CloudLoggingFormatter().format(record)
    assert "\x1b" not in out and "\\u001b" not in out
    assert json.loads(out)["message"] == " * Detected change, reloading"


def test_info_fields_writes_the_line_logger_info_writes_and_honours_the_level():
    from shared.log import info_fields  # noqa: PLC0415

    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(CloudLoggingFormatter().format(record))

    logger = logging.getLogger("test.info_fields")
    handler = Collect()
    logger.addHandler(handler)
    logger.propagate = False
    try:
        bind_request("req-2", "c" * 32, "d" * 16)
        fields = {"route": "/patients/<uuid:patient_id>", "httpRequest": {"status": 200}, "principal": "k"}
        logger.setLevel(logging.INFO)
        logger.info("request", extra={"fields": fields})
        info_fields(logger, "request", fields)
        logger.setLevel(logging.WARNING)
        info_fields(logger, "request", fields)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    first.pop("time"), second.pop("time")
    assert first == second and second["route"] == "/patients/<uuid:patient_id>" and second["request_id"] == "req-2"


def _json_handler(monkeypatch):  # noqa: ANN001, ANN202
    """A JSON handler as configure_logging installs it, alone on the root logger, writing to a buffer."""
    import io  # noqa: PLC0415

    from shared import log  # noqa: PLC0415

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CloudLoggingFormatter())
    monkeypatch.setattr(log, "_handler", handler)
    monkeypatch.setattr(logging.root, "handlers", [handler])
    return stream


def _records_made(monkeypatch) -> list[str]:  # noqa: ANN001
    made: list[str] = []
    original = logging.Logger.makeRecord

    def counted(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        made.append(self.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(logging.Logger, "makeRecord", counted)
    return made


def test_a_line_only_the_json_handler_takes_is_written_straight_and_as_its_formatter_writes_it(monkeypatch):
    from shared.log import info_fields  # noqa: PLC0415

    stream = _json_handler(monkeypatch)
    made = _records_made(monkeypatch)
    logger = logging.getLogger("test.info_fields.direct")
    logger.setLevel(logging.INFO)
    bind_request("req-3", "e" * 32, "f" * 16)
    fields = {"httpRequest": {"requestMethod": "GET", "status": 200, "latency": "0.0004s"},
              "route": "/patients/<uuid:patient_id>", "principal": "clerk \u00e9\x1b", "message": "not this one"}
    try:
        info_fields(logger, "request", fields)
        assert made == []  # no LogRecord: straight to the stream
        logger.addFilter(lambda record: True)  # a filter on the way: the long way, through logging
        info_fields(logger, "request", fields)
        assert made == ["test.info_fields.direct"]
    finally:
        logger.filters.clear()
        logger.setLevel(logging.NOTSET)
    direct, through_logging = (json.loads(line) for line in stream.getvalue().splitlines())
    assert direct["time"].endswith("+00:00") and len(direct["time"]) == len("2026-12-07T13:31:15.983+00:00")
    del direct["time"], through_logging["time"]
    assert direct == through_logging
    assert direct["message"] == "request" and direct["principal"] == "clerk \u00e9\x1b"
    assert direct["logging.googleapis.com/spanId"] == "f" * 16 and direct["request_id"] == "req-3"


def test_a_line_another_handler_would_see_goes_through_logging(monkeypatch, caplog):
    """A capture (pytest's caplog, an operator's extra handler) gets the record as logger.info gives it;
    the JSON handler writes the line all the same."""
    from shared.log import info_fields  # noqa: PLC0415

    stream = _json_handler(monkeypatch)
    logging.root.handlers.append(caplog.handler)  # as pytest installs it (the list is the test's own)
    logger = logging.getLogger("test.info_fields.captured")
    with caplog.at_level(logging.INFO, logger="test.info_fields.captured"):
        info_fields(logger, "request", {"route": "/readyz"})
    assert [(r.getMessage(), r.fields) for r in caplog.records] == [("request", {"route": "/readyz"})]
    assert json.loads(stream.getvalue())["route"] == "/readyz"


def test_a_line_below_the_handlers_level_is_not_written(monkeypatch):
    from shared.log import info_fields  # noqa: PLC0415

    stream = _json_handler(monkeypatch)
    made = _records_made(monkeypatch)
    logging.root.handlers[0].setLevel(logging.WARNING)
    logger = logging.getLogger("test.info_fields.quiet")
    logger.setLevel(logging.INFO)
    try:
        info_fields(logger, "request", {"route": "/readyz"})
    finally:
        logger.setLevel(logging.NOTSET)
    assert stream.getvalue() == "" and made == ["test.info_fields.quiet"]  # logging's own path decided
