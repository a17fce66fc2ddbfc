"""What an HDF5 file offers the data picker: the engine's listing (``models.data.list_arrays``,
its ``ArrayInfo``), and which labels array the picker preselects for a data array.

``list_arrays`` reads metadata only, cheap enough for the GUI thread; problems raise
``models.errors.DataError`` with one line naming the file.
"""

from __future__ import annotations

from models.data import ArrayInfo, list_arrays

__all__ = ["LABEL_NAMES", "ArrayInfo", "list_arrays", "preferred_labels"]

#: Names that say an array holds one label per row, most usual first.
LABEL_NAMES = ("labels", "label", "targets", "target", "y", "classes")


def preferred_labels(arrays: list[ArrayInfo], data: ArrayInfo | None) -> ArrayInfo | None:
    """The labels array to preselect for ``data``: one integer per row of it, named as labels
    usually are (beside it in the same group first, then anywhere); None when none fits."""
    if data is None:
        return None
    group = data.path.rpartition("/")[0]
    fits = [a for a in arrays if a.is_labels and a.shape[0] == data.shape[0]]

    def rank(a: ArrayInfo) -> tuple[int, int]:
        parent, _, name = a.path.rpartition("/")
        return (parent != group, LABEL_NAMES.index(name.lower()))

    named = [a for a in fits if a.path.rpartition("/")[2].lower() in LABEL_NAMES]
    return min(named, key=rank) if named else None
