"""Channels: each sends a batch of rendered messages and says what became of each one.

Every channel has the same small interface (:class:`base.Channel`); which one a delivery
uses is decided from the channel's settings at sending time, so staff can change
credentials without a restart. With no credentials, a channel writes to the messages
folder (:mod:`.folder`), the embedded default.
"""
