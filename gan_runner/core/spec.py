"""What the data looks like to a model: the one fact the data and model layers share.

Datasets produce it, model factories build for it, checkpoints store it; it lives below both
so that neither imports the other. Besides the shape of a sample it says what labels the data
carries: how many classes, their names (shown beside the rows of a class grid) and how many
training samples each has (a conditional run may draw its fake labels in that proportion).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataSpec:
    """The shape of one sample: (C, H, W) for images, (dim,) for points; and its labels.

    ``num_classes`` 0 means unlabelled data (or labels turned off: ``dataset.labels=none``).
    ``class_names`` and ``class_counts`` are empty or have one entry per class.
    """

    shape: tuple[int, ...]
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    class_counts: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.num_classes < 0:
            raise ValueError(f"num_classes={self.num_classes} is negative")
        for what, values in (("class_names", self.class_names),
                             ("class_counts", self.class_counts)):
            if values and len(values) != self.num_classes:
                raise ValueError(f"{what} has {len(values)} entries for {self.num_classes} "
                                 "classes")

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3

    @property
    def resolution(self) -> int:
        return self.shape[-1]

    @property
    def is_labelled(self) -> bool:
        return self.num_classes > 0

    def class_name(self, index: int) -> str:
        """The name of class ``index``, or its number where the data named none."""
        return self.class_names[index] if self.class_names else str(index)

    def label_facts(self) -> dict[str, object]:
        """The label facts as plain data (checkpoints and generator files store them beside
        the shape, which older files store alone)."""
        return {"num_classes": self.num_classes, "class_names": list(self.class_names),
                "class_counts": list(self.class_counts)}
