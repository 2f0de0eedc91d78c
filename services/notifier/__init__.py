"""The notifier: delivers signals from the history stream to webhooks, chat and e-mail."""
