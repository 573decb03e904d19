"""Building for Larger App: Saddlery parts mounted on a Saddle app."""
