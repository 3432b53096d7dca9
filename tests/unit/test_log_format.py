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
