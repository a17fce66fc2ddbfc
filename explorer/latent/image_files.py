"""Decoded images saved as PNG files: scaled up so small images are readable, optionally with
row and column labels, written atomically with the mode the user's umask gives."""

from __future__ import annotations

import os
import tempfile

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter

from models.errors import ExportError


def default_scale(height: int) -> int:
    """Integer up-scaling so that a small image (28 px) saves at a readable size (~112 px)."""
    return max(1, 112 // max(1, height))


def save_png(image: np.ndarray, path: str | os.PathLike, scale: int | None = None) -> str:
    """Write a uint8 image [H, W] or [H, W, 3] as PNG, each pixel a ``scale`` x ``scale`` block.

    ``scale`` defaults to :func:`default_scale` of the image height. The file is written to a
    temporary name in the same folder and renamed, so a failed save leaves no partial file.
    Raises :class:`ExportError` with one line naming the file.
    """
    path = os.fspath(path)
    img = np.ascontiguousarray(image, dtype=np.uint8)
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ExportError(f"{path}: cannot save an image of shape {img.shape} as PNG")
    if scale is None:
        scale = default_scale(img.shape[0])
    if scale > 1:
        img = np.ascontiguousarray(np.repeat(np.repeat(img, scale, axis=0), scale, axis=1))
    h, w = img.shape[:2]
    fmt = QImage.Format.Format_Grayscale8 if img.ndim == 2 else QImage.Format.Format_RGB888
    return write_png(QImage(img.data, w, h, img.strides[0], fmt).copy(), path)


def write_png(qimg: QImage, path: str | os.PathLike) -> str:
    """Write ``qimg`` as PNG at ``path``: the one place the explorer's images are written.

    The file goes to a temporary name in the same folder and is renamed, so a failed save leaves
    no partial file; it gets the mode an ordinary new file gets (0666 less the umask), not the
    temporary file's 0600. Raises :class:`ExportError` with one line naming the file.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ExportError(f"{path}: the folder does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".png", dir=folder)
    os.close(fd)
    try:
        if not qimg.save(tmp, "PNG"):
            raise ExportError(f"{path}: could not write the PNG")
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        raise ExportError(f"{path}: could not write the PNG ({exc.strerror or exc})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def save_labelled_png(image: np.ndarray, path: str | os.PathLike, scale: int,
                      rows: list[tuple[float, str]], columns: list[tuple[float, str]],
                      title: str = "", column_title: str = "") -> tuple[str, tuple[int, int]]:
    """Write ``image`` (uint8 [H, W] or [H, W, 3]) scaled by ``scale`` with its labels around it:
    ``rows`` (image y, text) on the left, ``columns`` (image x, text) below, ``title`` above and
    ``column_title`` under the column labels; black text on white.

    Returns the path and where the image's top-left corner is in the file (x, y).
    """
    img = np.ascontiguousarray(image, dtype=np.uint8)
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ExportError(f"{os.fspath(path)}: cannot save an image of shape {img.shape} as PNG")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = np.ascontiguousarray(np.repeat(np.repeat(img, scale, axis=0), scale, axis=1))
    h, w = img.shape[:2]
    font = QFont()
    font.setPixelSize(max(11, min(18, int(round(scale * 4)))))
    metrics = QFontMetricsF(font)
    line = metrics.height()
    pad = int(round(line * 0.6))
    left = int(max([metrics.horizontalAdvance(t) for _p, t in rows] or [0])) + (2 * pad if rows else pad)
    top = int(line + 2 * pad) if title else pad
    bottom = (int(line) + 2 * pad if columns else pad) + (int(line) + pad if column_title else 0)
    right = pad + int(max([metrics.horizontalAdvance(t) for _p, t in columns[-1:]] or [0]) / 2)
    out = QImage(left + w + right, top + h + bottom, QImage.Format.Format_RGB888)
    out.fill(QColor("white"))
    painter = QPainter(out)
    try:
        painter.drawImage(left, top, QImage(img.data, w, h, img.strides[0], QImage.Format.Format_RGB888))
        painter.setFont(font)
        painter.setPen(QColor("black"))
        for y, text in rows:
            painter.drawText(QRectF(0, top + y * scale - line / 2, left - pad, line),
                             int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), text)
        for x, text in columns:
            tw = metrics.horizontalAdvance(text) + 2
            painter.drawText(QRectF(left + x * scale - tw / 2, top + h + pad, tw, line),
                             int(Qt.AlignmentFlag.AlignCenter), text)
        if column_title:
            painter.drawText(QRectF(left, top + h + 2 * pad + line, w, line),
                             int(Qt.AlignmentFlag.AlignCenter), column_title)
        if title:
            painter.drawText(QRectF(0, pad, out.width(), line), int(Qt.AlignmentFlag.AlignCenter), title)
    finally:
        painter.end()
    return write_png(out, path), (left, top)
