package tocsin

import "slices"

// Action is something an actor may do with a broadcast. The service's
// transitions enforce the same rules; Actions lets every interface (the
// API's allowed_actions, the web pages' forms) ask instead of keeping its
// own copy of them.
type Action string

const (
	ActionApprove       Action = "approve"
	ActionReject        Action = "reject"
	ActionWithdraw      Action = "withdraw"
	ActionCancel        Action = "cancel"
	ActionResend        Action = "resend"
	ActionCorrect       Action = "correct"
	ActionPostHoc       Action = "post_hoc"
	ActionReviewPostHoc Action = "review_post_hoc"
)

// AllActions lists every action, in the order Actions returns them.
var AllActions = []Action{
	ActionApprove, ActionReject, ActionWithdraw, ActionCancel,
	ActionResend, ActionCorrect, ActionPostHoc, ActionReviewPostHoc,
}

// ActionSet is the actions an actor may take now; it is never nil.
type ActionSet []Action

// Has reports whether s allows action.
func (s ActionSet) Has(action Action) bool { return slices.Contains(s, action) }

// Actions returns what a may do with b now, by role, jurisdiction and b's
// state. It decides nothing the transitions do not decide again (they
// also check what a request carries, such as a reason), so an interface
// that offers exactly these is never refused for a rule it could know.
func (s *Service) Actions(a Actor, b *Broadcast) ActionSet {
	out := ActionSet{}
	if b == nil {
		return out
	}
	sup := a.Role == RoleRegulator && canSupervise(a, b.Scope, s.Regions)
	owner := a.Role == RoleDepartment && a.Org == b.Department
	for _, action := range AllActions {
		ok := false
		switch action {
		case ActionApprove, ActionReject:
			ok = sup && b.Status == StatusPendingReview
		case ActionCancel:
			ok = sup && (b.Status == StatusPendingReview || b.Status == StatusApproved || b.Status == StatusDispatching)
		case ActionWithdraw:
			ok = owner && (b.Status == StatusPendingReview || b.Status == StatusApproved)
		case ActionResend:
			ok = sup && (b.Status == StatusDispatching || b.Status == StatusCompleted)
		case ActionCorrect:
			ok = owner && checkFiler(a) == nil && canCorrect(a, b) == nil
		case ActionPostHoc:
			ok = owner && b.PostHoc != nil && b.PostHoc.Status != PostHocReviewed
		case ActionReviewPostHoc:
			ok = sup && b.PostHoc != nil && b.PostHoc.Status == PostHocFiled
		}
		if ok {
			out = append(out, action)
		}
	}
	return out
}

// CanSupervise reports whether regulator a may review or stop broadcasts
// with this scope (Article 3): MIIT anywhere, a provincial administration
// scopes wholly inside its province.
func (s *Service) CanSupervise(a Actor, scope []string) bool {
	return canSupervise(a, scope, s.Regions)
}

// CanFile reports whether a may file broadcasts (Article 17).
func CanFile(a Actor) bool { return checkFiler(a) == nil }
