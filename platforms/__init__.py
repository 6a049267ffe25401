"""Clients of outside platforms that several packages use (WeChat, Alipay)."""
