"""deepspike."""
