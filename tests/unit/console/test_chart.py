from datetime import datetime, timedelta, timezone

from shared.console.chart import HEIGHT, HourBucket, activity_chart, duration, nice_ceiling

START = datetime(2026, 3, 1, 0, tzinfo=timezone.utc)


def test_axis_maxima_are_round_numbers():
    assert [nice_ceiling(v) for v in (0, 0.3, 1, 7, 11, 20, 21, 480, 5000)] == [1, 0.5, 1, 10, 20, 20, 50, 500, 5000]


def test_durations_read_like_people_say_them():
    assert [duration(v) for v in (None, 0.42, 12.4, 95, 600, 9000)] == ["—", "0.4 s", "12 s", "95 s", "10 min", "2.5 h"]


def test_bars_scale_to_the_busiest_hour_and_the_lag_line_breaks_where_nothing_was_processed():
    buckets = [HourBucket(START + timedelta(hours=i), messages=m, lag_p95=lag)
               for i, (m, lag) in enumerate([(10, 30.0), (0, None), (5, 60.0), (20, 90.0)])]
    chart = activity_chart(buckets)
    _left, top, _right, bottom = chart.plot
    heights = [b.height for b in chart.bars]
    assert heights[3] == bottom - top and heights[1] == 0 and abs(heights[0] - heights[3] / 2) < 0.2
    assert all(b.y + b.height == bottom or abs(b.y + b.height - bottom) < 0.2 for b in chart.bars)
    assert len(chart.lag_lines) == 2 and len(chart.lag_lines[0].split()) == 1 and len(chart.lag_lines[1].split()) == 2
    assert [t.text for t in chart.left_ticks] == ["0", "10", "20"] and chart.right_ticks[-1].text == "100 s"
    assert chart.messages_total == 35 and chart.lag_max == 90.0
    assert "01:00 UTC — 0 message(s), lag p95 —" == chart.bars[1].label
    assert chart.height == HEIGHT and [t.text for t in chart.hour_ticks] == ["00h", "03h"]


def test_an_empty_day_draws_empty_axes():
    chart = activity_chart([HourBucket(START + timedelta(hours=i), 0, None) for i in range(24)])
    assert all(b.height == 0 for b in chart.bars) and chart.lag_lines == [] and chart.lag_max is None
    assert [t.text for t in chart.right_ticks] == ["", "", ""]
