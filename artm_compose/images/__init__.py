"""Container images: the registry-less base, the wheelhouse, and the content-tagged Redis and artm images."""
