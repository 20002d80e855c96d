"""Second-level fusion of member predictions: weighted blend, stacking and test balancing.

Every member writes one ``.npz`` per split (``members.load_member_predictions``). The
labelled holdout is split in two (``choose.split_holdout``): the *fit* rows fit the blend
weights and the stacker and choose the final method; the *score* rows are held apart and
only measure the chosen method, fitted as it is submitted. The test files are scored with
that same method (``choose.run_ensemble``, what the ensemble stage runs).

Modules: ``members`` (loading), ``blend`` (weighted blend), ``balance`` (equal predicted
class counts), ``stack`` (the second-level model), ``choose`` (fit every method on the fit
rows, choose, measure on the score rows).
"""
