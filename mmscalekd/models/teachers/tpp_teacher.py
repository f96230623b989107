"""A teacher that can also run its last stage on projected tokens (TPP).

Paper: *ScaleKD: Strong Vision Transformers Could Be Excellent Teachers*, NeurIPS 2024
(https://arxiv.org/abs/2411.06786), Sec. 3.3 (teacher parameter perception).
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Dict, Optional, Tuple

from torch import Tensor

from .base_teacher import BaseTeacher, to_hw


class TPPTeacher(BaseTeacher):
    """A :class:`BaseTeacher` whose last stage runs on tokens of its stage-(n-1) space.

    Teacher Parameter Perception feeds the student's projected stage-(n-1) features through
    the frozen last stage of the teacher (gradients reach the tokens, never the teacher's
    parameters). The distiller builds a ``tpp=True`` stage only against this type.

    Plain ViTs carry prefix tokens (class, register) beside the patch tokens. The student
    projection gives patch tokens only, so :meth:`forward_last_stage` prepends the layer-0
    prefix state (what the first block receives: the learned tokens plus their positional
    embedding, after any pre-norm) unless ``prefix`` passes another, and drops the prefix
    after the last block (``docs/teachers.md``, "Stage taps").

    Args:
        model (nn.Module): The built teacher network.
        tpp_dims (int): Channels of the tokens that enter the last stage.
        tpp_hw (Tuple[int, int]): Their grid at ``input_size``.
        num_prefix_tokens (int): Prefix tokens before the patch tokens in the last stage's
            input (0 for hierarchical networks). Defaults to 0.
        **kwargs: See :class:`BaseTeacher`.

    Attributes:
        tpp_dims (int), tpp_hw (Tuple[int, int]), num_prefix_tokens (int): As above.
    """

    def __init__(self, model, *, tpp_dims: int, tpp_hw: Tuple[int, int],
                 num_prefix_tokens: int = 0, **kwargs) -> None:
        super().__init__(model, **kwargs)
        self.tpp_dims = int(tpp_dims)
        self.tpp_hw = to_hw(tpp_hw, 'tpp_hw')
        self.num_prefix_tokens = int(num_prefix_tokens)

    def forward_last_stage(self, tokens: Tensor, prefix: Optional[Tensor] = None) -> Tensor:
        """Run the teacher's last stage on tokens of its stage-(n-1) space (TPP).

        Keeps the autograd graph: gradients reach ``tokens`` through the frozen teacher.

        Args:
            tokens (Tensor): ``(B, prod(tpp_hw), tpp_dims)`` patch tokens in raster order.
            prefix (Tensor, optional): ``(B, num_prefix_tokens, tpp_dims)``: the prefix-token
                state at the stage input. None: the layer-0 prefix state (the policy of
                ``docs/teachers.md``). Only for teachers with ``num_prefix_tokens > 0``.

        Returns:
            Tensor: ``(B, final_dims, *final_hw)``, the space of the target map.
        """
        n = self.tpp_hw[0] * self.tpp_hw[1]
        if tokens.dim() != 3 or tokens.shape[1] != n or tokens.shape[2] != self.tpp_dims:
            raise ValueError(
                f'{self.label}.forward_last_stage expects tokens of shape '
                f'(B, {n}, {self.tpp_dims}) (tpp_hw={self.tpp_hw}), got {tuple(tokens.shape)}')
        if prefix is not None:
            want = (tokens.shape[0], self.num_prefix_tokens, self.tpp_dims)
            if self.num_prefix_tokens == 0:
                raise ValueError(f'{self.label} has no prefix tokens; pass prefix=None')
            if tuple(prefix.shape) != want:
                raise ValueError(f'{self.label}.forward_last_stage expects prefix of shape '
                                 f'{want}, got {tuple(prefix.shape)}')
        return self._last_stage(tokens, prefix)

    def prefix_state(self, batch: int) -> Optional[Tensor]:
        """The layer-0 prefix state ``(batch, num_prefix_tokens, tpp_dims)`` that
        :meth:`forward_last_stage` prepends when given no ``prefix``; None without prefix
        tokens."""
        return None

    @abstractmethod
    def _last_stage(self, tokens: Tensor, prefix: Optional[Tensor]) -> Tensor:
        """The last stage on validated tokens (and prefix state or None)."""

    def shape_summary(self) -> Dict[str, object]:
        """The shapes the distiller derives connectors from."""
        return dict(super().shape_summary(), tpp_dims=self.tpp_dims, tpp_hw=self.tpp_hw,
                    num_prefix_tokens=self.num_prefix_tokens)
