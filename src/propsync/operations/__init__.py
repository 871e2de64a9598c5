"""Use cases: what propsync does, once, for every entry point.

The command line (``propsync.cli``), the HTTP service (``propsync.api``), the journal's applier and
the DAG tasks translate their input into these calls and their results into output; they do not
assemble the steps (validate, resolve ids, apply, report per command) themselves.

* ``track`` — tracking commands applied now (``propsync track``) or as the applier's batches.
* ``imports`` — a snapshot file and a mapping model through normalisation to the apply path
  (``propsync import``; the import DAGs run the same steps as tasks).
* ``edit`` — a user's edit of one customer (``propsync set``, ``PATCH /api/customers/...``, the
  profile page): which id it is written under, its batch, its apply.
"""
