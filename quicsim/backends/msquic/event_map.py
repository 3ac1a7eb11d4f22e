"""MsQuic's C events as quicsim's event objects (the same classes the simulator raises).

Everything a C event points to (received bytes, the ALPN) is copied here: it is valid
only while the callback runs.
"""

from __future__ import annotations

import ctypes
from typing import Any, Callable

from ... import events as ev
from ...enums import ConnectionEventType as C
from ...enums import DatagramSendState, ReceiveFlags, Status
from ...enums import StreamEventType as S
from . import bindings as b


def _status(raw: int) -> Status | int:
    value = b.status_value(raw)
    try:
        return Status(value)
    except ValueError:
        return value


def stream_event(event: b.QUIC_STREAM_EVENT, send_of: Callable[[int], tuple[Any, int]]) -> Any:
    """The quicsim event for a QUIC_STREAM_EVENT; ``send_of(ClientContext)`` gives the
    send's (client_context, send_id). None for a type quicsim does not know."""
    t = event.Type
    if t == S.SEND_COMPLETE:
        data = event.SEND_COMPLETE
        context, send_id = send_of(data.ClientContext or 0)
        return ev.send_complete(bool(data.Canceled), context, send_id)
    if t == S.RECEIVE:
        r = event.RECEIVE
        buffers = tuple(ctypes.string_at(r.Buffers[i].Buffer, r.Buffers[i].Length) for i in range(r.BufferCount))
        return ev.receive_buffers(int(r.AbsoluteOffset), buffers, int(r.TotalBufferLength), ReceiveFlags(r.Flags & 3))
    if t == S.START_COMPLETE:
        s = event.START_COMPLETE
        status = _status(s.Status)
        return ev.StartComplete(status=status, id=int(s.ID) if status == Status.SUCCESS else None,  # type: ignore[arg-type]
                                peer_accepted=bool(s.PeerAccepted))
    if t == S.PEER_SEND_SHUTDOWN:
        return ev.PeerSendShutdown()
    if t == S.PEER_SEND_ABORTED:
        return ev.PeerSendAborted(error_code=int(event.PEER_SEND_ABORTED.ErrorCode))
    if t == S.PEER_RECEIVE_ABORTED:
        return ev.PeerReceiveAborted(error_code=int(event.PEER_RECEIVE_ABORTED.ErrorCode))
    if t == S.SEND_SHUTDOWN_COMPLETE:
        return ev.SendShutdownComplete(graceful=bool(event.SEND_SHUTDOWN_COMPLETE.Graceful))
    if t == S.SHUTDOWN_COMPLETE:
        d = event.SHUTDOWN_COMPLETE
        return ev.ShutdownComplete(connection_shutdown=bool(d.ConnectionShutdown),
                                   app_close_in_progress=bool(d.AppCloseInProgress),
                                   connection_shutdown_by_app=bool(d.ConnectionShutdownByApp),
                                   connection_closed_remotely=bool(d.ConnectionClosedRemotely),
                                   connection_error_code=int(d.ConnectionErrorCode),
                                   connection_close_status=_status(d.ConnectionCloseStatus))  # type: ignore[arg-type]
    if t == S.IDEAL_SEND_BUFFER_SIZE:
        return ev.IdealSendBufferSize(byte_count=int(event.IDEAL_SEND_BUFFER_SIZE.ByteCount))
    if t == S.PEER_ACCEPTED:
        return ev.PeerAccepted()
    if t == S.CANCEL_ON_LOSS:
        return ev.CancelOnLoss(error_code=0)
    return None


def connection_event(event: b.QUIC_CONNECTION_EVENT, stream_of: Callable[[int, int], Any],
                     datagram_of: Callable[[int], tuple[Any, int]]) -> Any:
    """The quicsim event for a QUIC_CONNECTION_EVENT; ``stream_of(HQUIC, flags)`` wraps a
    peer's new stream, ``datagram_of(ClientContext)`` gives a datagram's (client_context,
    datagram_id). None for a type quicsim does not know."""
    t = event.Type
    if t == C.CONNECTED:
        c = event.CONNECTED
        alpn = ctypes.string_at(c.NegotiatedAlpn, c.NegotiatedAlpnLength).decode("ascii", "replace") \
            if c.NegotiatedAlpnLength else None
        return ev.Connected(session_resumed=bool(c.SessionResumed), negotiated_alpn=alpn)
    if t == C.SHUTDOWN_INITIATED_BY_TRANSPORT:
        d = event.SHUTDOWN_INITIATED_BY_TRANSPORT
        return ev.ShutdownInitiatedByTransport(status=_status(d.Status), error_code=int(d.ErrorCode))  # type: ignore[arg-type]
    if t == C.SHUTDOWN_INITIATED_BY_PEER:
        return ev.ShutdownInitiatedByPeer(error_code=int(event.SHUTDOWN_INITIATED_BY_PEER.ErrorCode))
    if t == C.SHUTDOWN_COMPLETE:
        d = event.SHUTDOWN_COMPLETE
        return ev.ConnectionShutdownComplete(handshake_completed=bool(d.HandshakeCompleted),
                                             peer_acknowledged_shutdown=bool(d.PeerAcknowledgedShutdown),
                                             app_close_in_progress=bool(d.AppCloseInProgress))
    if t == C.PEER_STREAM_STARTED:
        d = event.PEER_STREAM_STARTED
        return ev.PeerStreamStarted(stream=stream_of(d.Stream, int(d.Flags)), flags=int(d.Flags))
    if t == C.STREAMS_AVAILABLE:
        d = event.STREAMS_AVAILABLE
        return ev.StreamsAvailable(bidirectional_count=int(d.BidirectionalCount),
                                   unidirectional_count=int(d.UnidirectionalCount))
    if t == C.DATAGRAM_STATE_CHANGED:
        d = event.DATAGRAM_STATE_CHANGED
        return ev.DatagramStateChanged(send_enabled=bool(d.SendEnabled), max_send_length=int(d.MaxSendLength))
    if t == C.DATAGRAM_RECEIVED:
        d = event.DATAGRAM_RECEIVED
        data = ctypes.string_at(d.Buffer.contents.Buffer, d.Buffer.contents.Length)
        return ev.DatagramReceived(buffer=data, flags=ReceiveFlags(int(d.Flags) & 3))
    if t == C.DATAGRAM_SEND_STATE_CHANGED:
        d = event.DATAGRAM_SEND_STATE_CHANGED
        context, datagram_id = datagram_of(d.ClientContext or 0)
        return ev.DatagramSendStateChanged(client_context=context, state=DatagramSendState(d.State),
                                           datagram_id=datagram_id)
    return None
