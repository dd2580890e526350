// Package tocsin is the domain of the Tocsin broadcast coordinator: who may
// file, review and receive public-welfare SMS broadcasts under China's
// Provisions on the Administration of Short Message Services, the lifecycle a
// broadcast moves through, the rules each transition checks, and the error
// codes callers rely on.
//
// It depends on the standard library only, and on provider/wire, the
// dependency-free definition of the NATS messages it produces and reads. Storage, calendars, regions,
// transport and authentication are implemented elsewhere, behind the small
// interfaces declared here, and meet in cmd/tocsin.
package tocsin
