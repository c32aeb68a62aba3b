"""Generative metrics as pure functions of feature or logit arrays, in float64.

Where the features come from (a classifier trained here, or a local Inception network) is the
caller's concern; every score says how many samples it used.
"""

from tunelab.metrics.base import Score
from tunelab.metrics.fid import fid, frechet_distance
from tunelab.metrics.inception_score import inception_score
from tunelab.metrics.kid import kid

__all__ = ["Score", "fid", "frechet_distance", "inception_score", "kid"]
