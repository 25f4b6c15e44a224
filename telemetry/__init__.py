"""What every process reports about itself: metrics, logs, and the collector's start-up freeze.

At the bottom of the house: the API, the workers and the command import it; it imports none of
them.
"""
