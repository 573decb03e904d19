"""A gRPC service served by a Saddle app, for the gRPC tests (its _pb2 modules are built at test time)."""
