"""The command line people drive the cluster with."""
