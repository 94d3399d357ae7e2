"""What each job decides; plain Python over `store` (and `mail`)."""
