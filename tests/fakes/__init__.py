"""Local fake servers for the chat platforms (Telegram Bot API, Zalo Bot Platform, Zalo OA)."""
