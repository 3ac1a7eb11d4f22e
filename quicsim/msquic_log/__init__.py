"""Read a real MsQuic application's stdout log and judge it by the ledger's rule: which
accepted StreamSend calls never had their SEND_COMPLETE delivered (``quicsim check
--msquic-log``). ``parse`` reads the line shapes, ``rebuild`` what the application was
told, ``judge`` the verdict, ``history`` the same history as a quicsim trace."""
