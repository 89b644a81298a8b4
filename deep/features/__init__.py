"""Backbone features for region scoring and contours: hypercolumns."""

from .hypercolumn import Hypercolumns, hypercolumns, pool_hypercolumns, sample_hypercolumns

__all__ = ["Hypercolumns", "hypercolumns", "pool_hypercolumns", "sample_hypercolumns"]
