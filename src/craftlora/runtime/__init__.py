"""The shared base room every stage may import: worker processes that die with their parent."""
