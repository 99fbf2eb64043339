"""Core: errors, option checks, atomic writes, native builds and thread control; imports nothing of deepspike."""
