"""Messages and consent: who may be mailed, what each message carries."""
