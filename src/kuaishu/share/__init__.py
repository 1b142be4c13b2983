"""The sharing exchange (共享交换): applications, grants and reads of shared data under a grant."""
