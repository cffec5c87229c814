"""lmrec: does a pretrained language model make a recommender better, and at what cost?"""

__version__ = "0.1.0"
