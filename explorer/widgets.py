"""Small widgets the window's layout relies on to fit a laptop screen.

- :class:`ElidedLabel`: one line that never asks for more width than it is given; the text is
  elided with "…" and the whole of it is in the tooltip (the status bar's run file).
- :func:`scrolling`: a widget in a frameless, resizable ``QScrollArea``, so a dock can be made
  smaller than its content's minimum: the content scrolls instead of being squashed or cut.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QSizePolicy, QWidget


class ElidedLabel(QLabel):
    """A one-line label elided to its width; ``full_text()`` and the tooltip keep all of it.

    ``max_width`` caps the width it asks for, so a long path leaves room beside it (a status
    bar's temporary messages are drawn in what its permanent widgets leave).
    """

    def __init__(self, text: str = "", max_width: int = 420, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self._max_width = max_width
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(40)
        self.setFullText(text)

    def full_text(self) -> str:
        return self._full

    def setFullText(self, text: str) -> None:  # noqa: N802 (Qt style)
        self._full = text
        self.setToolTip(text)
        self.updateGeometry()
        self._elide()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
        width = self.fontMetrics().horizontalAdvance(self._full) + 8
        return QSize(min(width, self._max_width), super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return QSize(40, super().minimumSizeHint().height())

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt)
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideMiddle,
                                              max(0, self.width() - 4))
        if shown != self.text():
            super().setText(shown)


def needed_size(widget: QWidget, width: int | None = None) -> QSize:
    """The least size ``widget`` can be drawn in without cutting or overlapping its content:
    its minimum size hint, taller where word-wrapped text needs more height at ``width``
    (default: its width now)."""
    need = widget.minimumSizeHint().expandedTo(widget.minimumSize())
    layout = widget.layout()
    if layout is not None and layout.hasHeightForWidth():
        w = max(need.width(), widget.width() if width is None else width)
        need.setHeight(max(need.height(), layout.minimumHeightForWidth(w)))
    return need


class _Holder(QWidget):
    """Holds one widget at its own size, with no layout: a scroll area then sizes it by its
    minimum size alone. (Through a layout, a word-wrapped label or a plot's height-for-width
    made the scroll area give the content its preferred height, and scroll at any size.)"""

    def __init__(self, child: QWidget) -> None:
        super().__init__()
        self.child = child
        child.setParent(self)
        child.installEventFilter(self)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return needed_size(self.child, self.width())

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return self.child.sizeHint()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt)
        super().resizeEvent(event)
        self.child.setGeometry(self.rect())
        if event.oldSize().width() != event.size().width():
            self.updateGeometry()  # wrapped text may need another height at this width

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt)
        from PySide6.QtCore import QEvent

        if obj is self.child and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()  # its minimum may have changed: the scroll area looks again
        return False


def scrolling(widget: QWidget) -> QScrollArea:
    """``widget`` in a scroll area that resizes it: it fills the area down to its own minimum
    size, and scrolls below that."""
    area = QScrollArea()
    area.setObjectName("scroll." + (widget.objectName() or type(widget).__name__))
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidgetResizable(True)
    area.setWidget(_Holder(widget))
    area.setMinimumSize(120, 80)
    return area


class BusyOverlay(QLabel):
    """A translucent cover with one line of text over a widget whose content is out of date
    (the previous run's map while the next one loads). It follows the widget's size."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("busyOverlay")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setAutoFillBackground(False)
        self.setStyleSheet("#busyOverlay { background: rgba(255, 255, 255, 170); color: #202020;"
                           " font-size: 15px; }")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, False)
        self.hide()
        parent.installEventFilter(self)

    def cover(self, text: str) -> None:
        self.setText(text)
        self.setGeometry(self.parentWidget().rect())
        self.raise_()
        self.show()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt)
        from PySide6.QtCore import QEvent

        if obj is self.parentWidget() and event.type() == QEvent.Type.Resize:
            self.setGeometry(obj.rect())
        return False
