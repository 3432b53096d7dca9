"""bench.flame: py-spy's collapsed stacks summarised by self and total samples, and drawn."""

from xml.etree import ElementTree

from bench import flame

SITE = "/work/x/.venv/lib/python3.11/site-packages"
RAW = "\n".join([
    # py-spy --subprocesses puts the process at the root; recursion repeats a frame in one stack
    f'process 11:"python -m shared.serve";run (threading.py:10);get_patient ({"/work/x"}/shared/services/registry.py:40);'
    f"execute ({SITE}/sqlalchemy/engine/base.py:1400);_read ({SITE}/pg8000/core.py:90) 30",
    f'process 12:"";run (threading.py:10);get_patient (/work/x/shared/services/registry.py:41);'
    f"execute ({SITE}/sqlalchemy/engine/base.py:1400);execute ({SITE}/sqlalchemy/engine/base.py:1410) 50",
    "run (threading.py:10);dumps (/usr/lib/python3.11/json/__init__.py:231) 20",
    "",
    "garbage line without count",
])


def test_parse_drops_process_frames_and_malformed_lines():
    stacks = flame.parse(RAW)
    assert sum(stacks.values()) == 100
    assert all(not frame.startswith("process ") for stack in stacks for frame in stack)
    assert len(stacks) == 3


def test_summary_ranks_by_self_total_package_and_project_frames():
    s = flame.summary(flame.parse(RAW))
    assert s.samples == 100
    assert s.by_self[0] == ("execute (sqlalchemy/engine/base.py)", 50)
    assert ("_read (pg8000/core.py)", 30) in s.by_self
    total = dict(s.by_total)
    # counted once per stack although it recurses, lines of one function added up
    assert total["execute (sqlalchemy/engine/base.py)"] == 80
    assert total["get_patient (shared/services/registry.py)"] == 80
    assert total["run (threading.py)"] == 100
    assert dict(s.by_package) == {"sqlalchemy": 50, "pg8000": 30, "stdlib:json": 20}
    assert s.by_project == [("get_patient (shared/services/registry.py)", 80)]
    assert s.share(50) == 0.5


def test_render_text_gives_shares():
    text = flame.render_text("GET", flame.summary(flame.parse(RAW)), ["load: 100/s"])
    assert text.startswith("GET\nsamples: 100\nload: 100/s")
    assert " 50.0%      50  execute (sqlalchemy/engine/base.py)" in text


def test_package_names():
    assert flame.package("f (/work/x/shared/lis/apply.py:3)") == "shared.lis"
    assert flame.package("f (/work/x/functions/api/main.py:3)") == "functions.api"
    assert flame.package(f"f ({SITE}/pydantic/main.py:3)") == "pydantic"
    assert flame.package("f (/usr/lib/python3.11/logging/__init__.py:3)") == "stdlib:logging"
    assert flame.package("f (socket.py:3)") == "socket"


def test_svg_is_well_formed_with_one_box_per_frame_and_tooltips():
    stacks = flame.parse(RAW)
    doc = ElementTree.fromstring(flame.svg(stacks, "GET <c=16>"))
    titles = [t.text for t in doc.iter("{http://www.w3.org/2000/svg}title")]
    # root + run + get_patient + execute (one node: same frame) + _read + inner execute + dumps
    assert len(titles) == 7
    assert "all (100 samples, 100.0%)" in titles
    assert "dumps (<stdlib>/json/__init__.py) (20 samples, 20.0%)" in titles
    widths = {t.text: float(g.find("{http://www.w3.org/2000/svg}rect").get("width"))
              for g in doc.iter("{http://www.w3.org/2000/svg}g") for t in g.iter("{http://www.w3.org/2000/svg}title")}
    assert widths["all (100 samples, 100.0%)"] == 1200.0
    assert widths["dumps (<stdlib>/json/__init__.py) (20 samples, 20.0%)"] == 240.0


def test_markdown_row_for_the_docs_table():
    row = flame.markdown_row("GET at c=16", flame.summary(flame.parse(RAW)), n=2)
    assert row == ("| GET at c=16 (100 samples) | `execute (sqlalchemy/engine/base.py)` 50.0%, `_read (pg8000/core.py)` 30.0% "
                   "| `sqlalchemy` 50.0%, `pg8000` 30.0% | `get_patient (shared/services/registry.py)` 80.0% |")
    assert flame.MARKDOWN_HEADER.count("|") == 10
