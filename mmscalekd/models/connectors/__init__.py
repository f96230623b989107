"""Connectors (projectors) that map student features into a teacher's space."""
from .cross_attention_projector import CrossAttentionProjector

__all__ = ['CrossAttentionProjector']
