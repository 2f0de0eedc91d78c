"""The destinations a signal can go to, one module each (``base`` says what they share).

``CONFIG_TYPES`` is the registry the configuration loader builds its discriminated union
(on ``type``) from: add a destination by adding its module and its config class here.
"""

from __future__ import annotations

from notifier.destinations.base import DestinationConfig
from notifier.destinations.discord import DiscordConfig
from notifier.destinations.email import EmailConfig
from notifier.destinations.slack import SlackConfig
from notifier.destinations.telegram import TelegramConfig
from notifier.destinations.webhook import WebhookConfig

CONFIG_TYPES: tuple[type[DestinationConfig], ...] = (
    WebhookConfig,
    SlackConfig,
    DiscordConfig,
    TelegramConfig,
    EmailConfig,
)

__all__ = ["CONFIG_TYPES"]
