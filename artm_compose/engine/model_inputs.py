"""What the E-step kernel gets of a run's class weights and theta regularizers (executors and transform)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from artm_compose.engine.kernel import Documents, Modalities
from artm_compose.engine.regularizers import Regularizer, class_factors, theta_additions


def e_step_inputs(docs: Documents, row_slots: np.ndarray, classes: Sequence[str], class_weights: Mapping[str, float],
                  regularizers: Sequence[Regularizer], topic_names: Sequence[str],
                  inner: int) -> tuple[Documents, Modalities]:
    """Documents with their n_dw multiplied by the class weights, and what the kernel needs of classes
    and theta regularizers; ``row_slots`` is each local phi row's index into ``classes``."""
    factor = class_factors(classes, class_weights)[row_slots]
    weighted = Documents(indptr=docs.indptr, rows=docs.rows,
                         weights=(docs.weights * factor[docs.rows]).astype(np.float32))
    return weighted, Modalities(row_class=np.asarray(row_slots, dtype=np.int32), classes=len(classes),
                                by_class=bool(class_weights),
                                theta_add=theta_additions(regularizers, topic_names, inner))
