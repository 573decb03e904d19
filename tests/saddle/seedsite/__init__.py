"""The seed's Saddle examples ("Request Handling with Skito-Saddle" to "Logging and
Traceback", "Implementing XMLRPC Service"), as a site: one module per chapter.

The code is the seed's, in Python 3 spelling; where the seed repeats a
function name for variants of one example, the variants get numbered names.
"""
