"""The training plots as a user meets them: empty at launch, ranges on the settled part of a run,
readable colour-bar labels, a summary that wraps, views named for what they show, exports that
scale their legend."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QImage, QPainter

from explorer.panels.axes import log_ticks
from explorer.panels.common import EMPTY_HINT, settled_range
from explorer.panels.curves import CurvesPanel
from explorer.panels.kl_panel import KLPanel
from explorer.panels.rd_plane import RateDistortionPanel
from explorer.state import RunSession, RunsModel

LONG_NAME = "run-2026-12-01T09-25-16.123456-beta1-mnist-latent10"


def history(session: RunSession, n: int = 200, d: int = 4, kl_scale: float = 1.0,
            transient: bool = True) -> None:
    """A run whose first 20 logged steps have D of about 400 nats, then D settles in 90-120."""
    rng = np.random.default_rng(0)
    steps = (len(session.steps) + np.arange(n)) * 10.0
    dist = 105 + rng.uniform(-15, 15, n)
    rate = 20 + rng.uniform(-2, 2, n)
    if transient:
        dist[:20] = np.linspace(420, 130, 20)
        rate[:20] = np.linspace(1, 18, 20)
    kl = rng.uniform(1.2e-4, 5e-4, (n, d)) * kl_scale
    session.extend_steps({"step": steps, "epoch": 1 + steps // 1000, "elbo": -(dist + rate),
                          "distortion": dist, "rate": rate, "beta": np.ones(n), "kl_per_dim": kl})
    e = np.arange(1, 3)
    session.extend_epochs({"epoch": e, "step": e * 1000.0, "val_elbo": -(125.0 - e),
                           "val_distortion": 105.0 - e, "val_rate": 20.0 + 0 * e,
                           "activity_per_dim": np.full((2, d), 0.5)})


@pytest.fixture
def runs():
    return RunsModel()


def make(qtbot, cls, runs, size=(560, 420)):
    panel = cls(runs)
    qtbot.addWidget(panel)
    panel.resize(*size)
    panel.show()
    qtbot.waitExposed(panel)
    panel.flush()
    return panel


# --------------------------------------------------------------------------- empty at launch
def test_empty_plots_say_what_to_do_instead_of_showing_meaningless_axes(qtbot, runs):
    rd, curves, kl = (make(qtbot, c, runs) for c in (RateDistortionPanel, CurvesPanel, KLPanel))
    hints = [rd.empty_hint, curves.empty_hints["distortion"], kl.bar_hint]
    for hint in hints:
        assert hint.item.isVisible() and EMPTY_HINT in hint.item.toPlainText()
        assert not hint.plot.getAxis("left").style["showValues"]
        assert not hint.plot.getAxis("bottom").style["showValues"]
        # Centred in its plot.
        box = hint.plot.getViewBox().sceneBoundingRect()
        centre = hint.item.sceneBoundingRect().center()
        assert abs(centre.x() - box.center().x()) < 0.1 * box.width()
        assert abs(centre.y() - box.center().y()) < 0.1 * box.height()
    assert not kl.heat_hint.plot.getAxis("left").style["showValues"]
    assert not kl.colour_bar.axis.style["showValues"] and not kl.threshold.isVisible()
    s = runs.add(RunSession("r", source="file"))
    history(s)
    for panel in (rd, curves, kl):
        panel.flush()
    for hint in hints + [kl.heat_hint]:
        assert not hint.item.isVisible()
        assert hint.plot.getAxis("left").style["showValues"]
    assert kl.colour_bar.axis.style["showValues"] and kl.threshold.isVisible()


# --------------------------------------------------------------------------- settled ranges
def test_settled_range_ignores_the_early_transient():
    d = np.r_[np.linspace(420, 130, 20), np.full(180, 105.0), [98.0, 118.0]]
    lo, hi = settled_range([d])
    assert 95 <= lo <= 105 and 105 <= hi <= 125
    assert settled_range([np.array([np.nan])]) is None


def test_rd_plane_and_curves_range_on_the_settled_part_and_keep_a_users_zoom(qtbot, runs):
    rd = make(qtbot, RateDistortionPanel, runs)
    curves = make(qtbot, CurvesPanel, runs)
    s = runs.add(RunSession("r", source="file"))
    history(s)
    rd.flush()
    curves.flush()
    (x0, x1), (y0, y1) = rd.plot.getViewBox().viewRange()
    assert y0 <= 90 and 120 <= y1 < 160, (y0, y1)  # not 0-420: the settled region fills the view
    assert x0 <= 18 and x1 < 30
    _, (cy0, cy1) = curves.plots["distortion"].getViewBox().viewRange()
    assert cy0 <= 90 and 120 <= cy1 < 160, (cy0, cy1)
    # The transient is still drawn: zooming out shows it.
    assert float(np.max(rd.run_items(s).train.getData()[1])) == pytest.approx(420)
    # A zoom by the user stays when more data arrive; the "A" button brings the range back.
    vb = rd.plot.getViewBox()
    vb.scaleBy((4, 4))
    vb.sigRangeChangedManually.emit([True, True])
    zoomed = vb.viewRange()
    history(s, transient=False)
    rd.flush()
    np.testing.assert_allclose(vb.viewRange(), zoomed)
    rd.plot.autoBtn.clicked.emit(rd.plot.autoBtn)
    (_, _), (y0, y1) = vb.viewRange()
    assert y1 < 160


# --------------------------------------------------------------------------- KL panel
def _tick_texts(axis):
    """The (rect, text) of the labels an axis draws, as it paints them."""
    image = QImage(200, 400, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    if axis.style["tickFont"] is not None:
        painter.setFont(axis.style["tickFont"])
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(rect, text) for rect, _flags, text in specs[2]]


def test_colour_bar_labels_do_not_overlap_when_values_span_less_than_a_decade(qtbot, runs):
    kl = make(qtbot, KLPanel, runs, size=(560, 520))
    s = runs.add(RunSession("r", source="file"))
    history(s, kl_scale=1.0)  # KL 1.2e-4 to 5e-4 nats: levels from 1e-4 to under 10^-3.3
    kl.flush()
    lo, hi = kl._levels
    assert hi - lo < 1
    qtbot.wait(20)
    for axis in (kl.colour_bar.axis, kl.bar_plot.getAxis("left")):
        labels = _tick_texts(axis)
        assert len(labels) >= 2, labels  # labels too wide for the narrow bar are not drawn at all
        rects = sorted((r for r, _t in labels), key=lambda r: r.top())
        for a, b in zip(rects, rects[1:]):
            assert not a.intersects(b), [t for _r, t in labels]


def test_log_ticks_are_few_and_round():
    assert [t for _p, t in log_ticks(-4, 0)] == ["1e-4", "0.001", "0.01", "0.1", "1"]
    ticks = log_ticks(-4, -3.3)
    assert 2 <= len(ticks) <= 5
    assert all(-4 <= p <= -3.3 for p, _t in ticks)


def test_summary_wraps_instead_of_widening_the_panel(qtbot, runs):
    kl = make(qtbot, KLPanel, runs, size=(420, 420))
    s = runs.add(RunSession(LONG_NAME, source="file"))
    history(s)
    kl.flush()
    assert LONG_NAME in kl.summary.text()
    assert kl.summary.wordWrap()
    text_width = kl.summary.fontMetrics().horizontalAdvance(kl.summary.text())
    assert text_width > 420
    assert kl.summary.minimumSizeHint().width() < text_width / 2
    short = make(qtbot, KLPanel, RunsModel(), size=(420, 420))
    assert kl.minimumSizeHint().width() <= short.minimumSizeHint().width()
    qtbot.wait(50)  # the layout settles
    assert kl.summary.width() <= kl.width()
    assert kl.summary.height() >= 2 * kl.summary.fontMetrics().height() - 2  # wrapped: two lines


def test_bar_plot_is_titled_for_what_it_shows(qtbot, runs):
    kl = make(qtbot, KLPanel, runs)
    s = runs.add(RunSession("r", source="file"))
    history(s)
    kl.flush()
    assert kl.bar_plot.titleLabel.text.startswith("KL per latent dimension")
    kl.show_combo.setCurrentIndex(kl.show_combo.findData("activity"))
    assert kl.bar_plot.titleLabel.text.startswith("Activity")
    assert "KL" not in kl.bar_plot.titleLabel.text


# --------------------------------------------------------------------------- export
def _ink_rows(image: QImage, rect) -> int:
    """Rows of ``rect`` in ``image`` holding dark (text) pixels."""
    g = image.convertToFormat(QImage.Format.Format_Grayscale8)
    arr = np.frombuffer(g.constBits(), np.uint8).reshape(g.height(), g.bytesPerLine())[:, : g.width()]
    x0, y0 = max(0, int(rect.left())), max(0, int(rect.top()))
    x1, y1 = min(g.width(), int(rect.right()) + 1), min(g.height(), int(rect.bottom()) + 1)
    return int((arr[y0:y1, x0:x1] < 100).any(axis=1).sum())


def test_export_at_twice_the_size_scales_the_legend_too(qtbot, runs, tmp_path):
    rd = make(qtbot, RateDistortionPanel, runs)
    s = runs.add(RunSession(LONG_NAME, source="file"))
    history(s)
    rd.flush()
    legend = rd.legend.sceneBoundingRect().translated(-rd.plot.sceneBoundingRect().topLeft())
    rd.save_image(str(tmp_path / "x1.png"), scale=1.0)
    rd.save_image(str(tmp_path / "x2.png"), scale=2.0)
    one, two = QImage(str(tmp_path / "x1.png")), QImage(str(tmp_path / "x2.png"))
    assert two.width() >= 2 * one.width() - 2
    rows1 = _ink_rows(one, legend)
    # The legend keeps its top-right corner; at twice the size it is twice as tall and wide.
    from PySide6.QtCore import QRectF

    big = QRectF(2 * legend.right() - 2 * legend.width(), 2 * legend.top(),
                 2 * legend.width(), 2 * legend.height())
    rows2 = _ink_rows(two, big)
    assert rows1 > 3 and rows2 >= 1.6 * rows1, (rows1, rows2)
    assert rd.legend.scale() == 1.0  # the window's legend is as it was


def test_colour_bar_labels_do_not_overlap_on_a_short_panel(qtbot, runs):
    # A laptop's KL dock leaves the colour bar ~35 px: five decade labels (1e-4 ... 1) touched.
    kl = make(qtbot, KLPanel, runs, size=(560, 300))
    s = runs.add(RunSession("r", source="file"))
    history(s, kl_scale=1000.0)  # KL up to ~0.5 nats: levels from 1e-4, over three decades
    kl.flush()
    lo, hi = kl._levels
    assert hi - lo > 3
    qtbot.wait(20)
    labels = _tick_texts(kl.colour_bar.axis)
    assert len(labels) >= 2, labels
    rects = sorted((r for r, _t in labels), key=lambda r: r.top())
    for a, b in zip(rects, rects[1:]):
        assert not a.intersects(b), [t for _r, t in labels]


@pytest.mark.parametrize("height", [150, 200, 260])
def test_curve_tick_labels_do_not_pile_up_on_a_short_dock(qtbot, runs, height):
    # Three stacked curves in a laptop's dock: the ELBO plot's axis is 40-80 px long, and
    # pyqtgraph's own spacing put six labels (-140 ... -240) on top of each other there.
    curves = make(qtbot, CurvesPanel, runs, size=(420, height))
    s = runs.add(RunSession("r", source="file"))
    history(s)
    curves.flush()
    qtbot.wait(20)
    for plot in curves.plots.values():
        axis = plot.getAxis("left")
        labels = _tick_texts(axis)
        rects = sorted((r for r, _t in labels), key=lambda r: r.top())
        for a, b in zip(rects, rects[1:]):
            assert not a.intersects(b), (height, [t for _r, t in labels])


def test_a_short_axis_keeps_a_label_over_a_wide_range(qtbot):
    from explorer.panels.axes import SpacedAxis

    axis = SpacedAxis("left")
    for lo, hi in ((-400.0, -140.0), (-240.0, -140.0), (0.5, 3.0), (100.0, 101.0)):
        for size in (30.0, 45.0, 80.0, 300.0):
            shown = [v for v in axis.tickValues(lo, hi, size)[0][1] if lo <= v <= hi]
            assert shown, (lo, hi, size)


def test_the_slope_label_stays_inside_the_plane_near_its_lower_edge(qtbot, runs):
    # At 1366 x 768 the "slope −β" label hung below a line near the bottom, half cut off.
    rd = make(qtbot, RateDistortionPanel, runs)
    s = runs.add(RunSession("r", source="file"))
    history(s)
    rd.flush()
    r, d = rd.beta_point
    vb = rd.plot.getViewBox()
    for low in (d - 1.0, d - 20.0):  # the line just above the lower edge, then mid-plot
        vb.setRange(xRange=(r - 3, r + 3), yRange=(low, low + 30), padding=0)
        rd._update_guides()
        qtbot.wait(20)
        assert rd.beta_label.isVisible()
        label, view = rd.beta_label.sceneBoundingRect(), vb.sceneBoundingRect()
        assert view.top() <= label.top() and label.bottom() <= view.bottom(), (low, label, view)


def test_the_steps_axis_leaves_room_ahead_and_moves_only_when_it_is_filled(qtbot):
    # Each move of a shared x range rebuilt all six axes of the curves: a live run's new steps
    # fill the room left ahead of them, and the range moves only when they reach its end.
    import pyqtgraph as pg

    from explorer.panels.common import SettledRange

    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    extent = {"hi": 100.0}
    x = SettledRange(widget.getPlotItem(), "x", lambda: (0.0, extent["hi"]), padding=0.0,
                     headroom=0.25)
    vb = widget.getPlotItem().getViewBox()
    moves = []
    vb.sigXRangeChanged.connect(lambda *_a: moves.append(vb.viewRange()[0]))
    x.update()
    assert vb.viewRange()[0] == pytest.approx([0.0, 125.0])
    for hi in (105.0, 110.0, 120.0, 125.0):  # within the room: no move
        extent["hi"] = hi
        x.update()
    assert len(moves) == 1
    extent["hi"] = 130.0  # past it: room again
    x.update()
    assert len(moves) == 2 and vb.viewRange()[0] == pytest.approx([0.0, 162.5])
    # A user's zoom hands the axis over; "A" gives it back.
    vb.sigRangeChangedManually.emit([True, False])
    extent["hi"] = 500.0
    x.update()
    assert len(moves) == 2
    x.reset()
    assert vb.viewRange()[0] == pytest.approx([0.0, 625.0])


def test_the_live_plots_are_made_with_their_axes_and_two_tick_levels(qtbot, runs):
    # A third tick level (40 faint marks, each label formatted and measured to be dropped)
    # was half of an axis's rebuild; and swapping axes into a made plot deletes its first ones.
    import pyqtgraph as pg

    from explorer.panels.axes import SpacedAxis, style_plot

    panels = [make(qtbot, cls, runs) for cls in (CurvesPanel, KLPanel, RateDistortionPanel)]
    history(runs.add(RunSession("r", source="file")))
    plots = [*panels[0].plots.values(), panels[1].bar_plot, panels[1].heat_plot, panels[2].plot]
    for panel in panels:
        panel.flush()
    for plot in plots:
        assert isinstance(plot.getAxis("left"), SpacedAxis), plot.titleLabel.text
        for name in ("left", "bottom"):
            axis = plot.getAxis(name)
            assert axis.style["maxTickLevel"] == 1
            lo, hi = axis.range
            assert len(axis.tickValues(lo, hi, 400)) <= 2, (plot.titleLabel.text, name)
    with pytest.raises(TypeError, match="live_axes"):  # a new plot made without them is caught
        style_plot(pg.PlotItem(), "t", "x", "y")


def test_a_settling_range_moves_the_view_only_when_the_data_leave_it_or_fill_too_little(qtbot):
    # While a run settles, its settled range moves a little at every redraw; the view moved
    # each time (2% of a change), rebuilding the axes and reflowing the plane's items.
    import pyqtgraph as pg

    from explorer.panels.common import MARGIN, SLACK, TREND, SettledRange

    w = pg.PlotWidget()
    qtbot.addWidget(w)
    plot, vb = w.getPlotItem(), w.getPlotItem().getViewBox()
    data = {"lo": 100.0, "hi": 200.0}
    y = SettledRange(plot, "y", lambda: (data["lo"], data["hi"]), padding=0.0)
    moves = []
    vb.sigYRangeChanged.connect(lambda *_a: moves.append(tuple(vb.viewRange()[1])))

    def expected(below: float = 0.0) -> tuple[float, float]:
        span = data["hi"] - data["lo"]
        return data["lo"] - (MARGIN + below) * span, data["hi"] + MARGIN * span

    y.update()
    assert moves == [pytest.approx(expected())]  # (90, 210): room on both sides
    for i in range(1, 10):  # the data drift down by 1 at each redraw, within the room
        data["lo"], data["hi"] = 100.0 - i, 200.0 - i
        y.update()
    assert len(moves) == 1
    data["lo"] = 80.0  # out of the view: it moves at once, with more room on the side it left
    y.update()
    assert len(moves) == 2 and moves[-1] == pytest.approx(expected(below=TREND))
    view = moves[-1][1] - moves[-1][0]
    data["lo"] = moves[-1][0] + 1.0
    data["hi"] = data["lo"] + view / SLACK + 1.0  # in the view, filling just over 1 / SLACK of it
    y.update()
    assert len(moves) == 2
    data["hi"] -= 2.0  # now less: it closes in
    y.update()
    assert len(moves) == 3 and moves[-1] == pytest.approx(expected())


def test_set_data_skips_only_what_the_item_already_shows(qtbot):
    import pyqtgraph as pg

    from explorer.panels.common import set_data

    item = pg.PlotDataItem()
    calls = []
    real = item.setData
    item.setData = lambda *a, **k: (calls.append(a), real(*a, **k))
    assert set_data(item, [1, 2], [3, 4]) and not set_data(item, np.array([1.0, 2.0]), [3.0, 4.0])
    assert set_data(item, [1, 2], [3, 5]) and set_data(item, [], [])  # a change, then emptied
    assert not set_data(item, [], []) and len(calls) == 3
    x, y = item.getData()
    assert x is None or len(x) == 0


def test_a_floored_range_keeps_its_room_above_the_floor_and_stays_put(qtbot):
    # The rate-distortion plane's margin showed negative rates, which no run can have.
    import pyqtgraph as pg

    from explorer.panels.common import SettledRange

    w = pg.PlotWidget()
    qtbot.addWidget(w)
    vb = w.getPlotItem().getViewBox()
    data = {"lo": 0.5, "hi": 40.0}
    x = SettledRange(w.getPlotItem(), "x", lambda: (data["lo"], data["hi"]), floor=0.0)
    moves = []
    vb.sigXRangeChanged.connect(lambda *_a: moves.append(tuple(vb.viewRange()[0])))
    x.update()
    x.update()
    assert len(moves) == 1 and moves[0][0] == 0.0 and moves[0][1] > 40.0
    data["lo"] = -3.0  # data below the floor (a Gaussian's D): the floor no longer holds
    x.update()
    assert len(moves) == 2 and moves[-1][0] < -3.0


def test_the_kl_heat_maps_steps_axis_moves_only_when_the_run_fills_its_room(qtbot, runs):
    # The heat map followed its image's width: each new column moved its steps axis, which
    # rebuilt the axis and rescaled the image at every redraw of a live run.
    kl = make(qtbot, KLPanel, runs)
    s = runs.add(RunSession("r", source="file"))
    history(s, n=100, transient=False)
    kl.flush()
    vb = kl.heat_plot.getViewBox()
    moves = []
    vb.sigXRangeChanged.connect(lambda *_a: moves.append(tuple(vb.viewRange()[0])))
    for _ in range(20):  # 20 redraws of a run growing by 5 logged steps each
        history(s, n=5, transient=False)
        kl.flush()
        qtbot.wait(10)  # pyqtgraph's auto-range runs when the view next updates
    assert len(moves) <= 3, moves
    rect = kl.heat.mapRectToView(kl.heat.boundingRect())
    (x0, x1), (y0, y1) = vb.viewRange()
    assert x0 <= rect.left() and rect.right() <= x1  # every column in view
    assert (y0, y1) == pytest.approx((-0.5, 3.5))  # one row per dimension (d = 4)


def test_no_axis_of_a_live_plot_rebuilds_an_si_prefixed_label(qtbot, runs):
    # The hidden top and right axes follow the view too; with the SI prefix on, each range
    # change rebuilt their HTML label (setHtml in every redraw of the curves).
    panels = [make(qtbot, cls, runs) for cls in (CurvesPanel, KLPanel, RateDistortionPanel)]
    plots = [*panels[0].plots.values(), panels[1].bar_plot, panels[1].heat_plot, panels[2].plot]
    for plot in plots:
        for name in ("left", "bottom", "top", "right"):
            assert not plot.getAxis(name).autoSIPrefix, (plot.titleLabel.text, name)
    assert not panels[1].colour_bar.axis.autoSIPrefix
