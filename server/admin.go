package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// adminService implements trail.v1.AdminService. Every call needs an admin
// key and is audited into the system tenant.
type adminService struct {
	trailv1.UnimplementedAdminServiceServer
	s *Server
}

func (as *adminService) begin(ctx context.Context) (*access, error) {
	return as.s.authorize(ctx, permAdmin, trailv1.Category_CATEGORY_SYSTEM, "")
}

// WhoAmI describes the caller's own key to any authenticated caller: what
// the key may do is no secret to its holder, and a client such as the web
// console needs it to show the right screens. It is audited like every
// call (as an authentication event, since it is how a console session
// starts).
func (as *adminService) WhoAmI(ctx context.Context, _ *trailv1.WhoAmIRequest) (_ *trailv1.WhoAmIResponse, err error) {
	p, err := principalFrom(ctx)
	if err != nil {
		return nil, err
	}
	ac := as.s.audit.begin(ctx, p, trailv1.Category_CATEGORY_AUTHENTICATION, "")
	defer func() { ac.finish(err) }()
	resp := &trailv1.WhoAmIResponse{
		KeyId: p.keyID, Role: p.role, AllTenants: p.tenants == nil,
		LogName: as.s.cfg.Signer.Name(), LogVerifierKey: as.s.cfg.VerifierKey, NodeId: as.s.cluster.Status().ID,
	}
	if p.tenants == nil {
		e, release := as.s.cluster.AcquireEngine()
		defer release()
		if resp.Tenants, err = e.Tenants(ctx); err != nil {
			return nil, fmt.Errorf("server: listing tenants for whoami: %w", err)
		}
	} else {
		for t := range p.tenants {
			resp.Tenants = append(resp.Tenants, t)
		}
		slices.Sort(resp.Tenants)
	}
	return resp, nil
}

func (as *adminService) ClusterStatus(ctx context.Context, _ *trailv1.ClusterStatusRequest) (_ *trailv1.ClusterStatusResponse, err error) {
	ac, err := as.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	st := as.s.cluster.Status()
	resp := &trailv1.ClusterStatusResponse{
		NodeId: st.ID, State: st.State, LeaderId: st.LeaderID,
		AppliedIndex: st.AppliedIndex, CommitIndex: st.CommitIndex, LastLogIndex: st.LastLogIndex, Term: st.Term,
	}
	if !st.LastContact.IsZero() {
		resp.LastContact = timestamppb.New(st.LastContact)
	}
	for _, n := range st.Nodes {
		resp.Nodes = append(resp.Nodes, &trailv1.ClusterNode{
			Id: n.ID, RaftAddress: n.Address, ApiAddress: n.APIAddr, CosignerKey: n.CosignerKey, Voter: n.Voter, Leader: n.Leader, Unreachable: n.Unreachable,
		})
	}
	return resp, nil
}

func (as *adminService) AddNode(ctx context.Context, req *trailv1.AddNodeRequest) (_ *trailv1.AddNodeResponse, err error) {
	ac, err := as.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	ac.set("node_id", req.GetId())
	ac.set("raft_address", req.GetRaftAddress())
	if err := checkNodeID(req.GetId()); err != nil {
		return nil, err
	}
	if req.GetRaftAddress() == "" {
		return nil, badRequest("raft_address is required")
	}
	if err := as.s.cluster.Join(ctx, req.GetId(), req.GetRaftAddress()); err != nil {
		return nil, membershipError(err)
	}
	return &trailv1.AddNodeResponse{}, nil
}

func (as *adminService) RemoveNode(ctx context.Context, req *trailv1.RemoveNodeRequest) (_ *trailv1.RemoveNodeResponse, err error) {
	ac, err := as.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	ac.set("node_id", req.GetId())
	if err := checkNodeID(req.GetId()); err != nil {
		return nil, err
	}
	if err := as.s.cluster.Remove(ctx, req.GetId()); err != nil {
		return nil, membershipError(err)
	}
	return &trailv1.RemoveNodeResponse{}, nil
}

func (as *adminService) TransferLeadership(ctx context.Context, req *trailv1.TransferLeadershipRequest) (_ *trailv1.TransferLeadershipResponse, err error) {
	ac, err := as.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	ac.set("node_id", req.GetId())
	if err := as.s.cluster.TransferLeadership(ctx, req.GetId()); err != nil {
		return nil, membershipError(err)
	}
	return &trailv1.TransferLeadershipResponse{}, nil
}

func (as *adminService) CreateAPIKey(ctx context.Context, req *trailv1.CreateAPIKeyRequest) (_ *trailv1.CreateAPIKeyResponse, err error) {
	ac, err := as.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	ac.set("role", req.GetRole().String())
	ac.set("tenants", strings.Join(req.GetTenants(), ","))
	rec, token, err := as.s.keys.create(ctx, req.GetRole(), req.GetTenants(), req.GetDescription(), time.Now())
	if err != nil {
		return nil, err
	}
	ac.set("key_id", rec.ID)
	return &trailv1.CreateAPIKeyResponse{Key: rec.proto(), Token: token}, nil
}

func (as *adminService) ListAPIKeys(ctx context.Context, _ *trailv1.ListAPIKeysRequest) (_ *trailv1.ListAPIKeysResponse, err error) {
	ac, err := as.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	recs, err := as.s.keys.list(ctx)
	if err != nil {
		return nil, err
	}
	resp := &trailv1.ListAPIKeysResponse{Keys: make([]*trailv1.APIKey, len(recs))}
	for i, r := range recs {
		resp.Keys[i] = r.proto()
	}
	return resp, nil
}

func (as *adminService) RevokeAPIKey(ctx context.Context, req *trailv1.RevokeAPIKeyRequest) (_ *trailv1.RevokeAPIKeyResponse, err error) {
	ac, err := as.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { ac.finish(err) }()
	ac.set("key_id", req.GetId())
	if err := as.s.keys.revoke(ctx, req.GetId()); err != nil {
		return nil, err
	}
	return &trailv1.RevokeAPIKeyResponse{}, nil
}

// membershipError classifies a failed membership change. Raft reports
// refusals such as "cannot transfer leadership to itself" as plain errors,
// which would otherwise surface as an opaque INTERNAL; for these admin-only
// calls they are shown as FAILED_PRECONDITION with Raft's own words.
func membershipError(err error) error {
	if codeOf(err) != codes.Internal {
		return err
	}
	return fmt.Errorf("%w: %v", errPrecondition, err)
}

// checkNodeID validates a Raft server id from a request.
func checkNodeID(id string) error {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, " \t\r\n/") {
		return badRequest("node id %q: want 1 to 128 characters without spaces or '/'", id)
	}
	return nil
}
