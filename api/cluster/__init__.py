"""The cluster: which process does what. Leases with fencing (leases.py), the partition of a case
(partitioning.py), the members and their leases as stored (repository.py), and `afstand cluster status`."""
