"""Inline shape comments, the seeds' ``# (B, C, H*W)``: printed next to the traced source
(:func:`annotate`), checked against what ran (:func:`check_comments`) and written into the
user's files (:func:`write_comments`). docs/comments.md describes the format and the rules.
"""

from shapetrace.comments.annotate import Annotation, annotate
from shapetrace.comments.check import CheckReport, CommentCheck, Status, check_comments
from shapetrace.comments.write import WriteRefused, WriteReport, write_comments

__all__ = [
    "Annotation",
    "CheckReport",
    "CommentCheck",
    "Status",
    "WriteRefused",
    "WriteReport",
    "annotate",
    "check_comments",
    "write_comments",
]
