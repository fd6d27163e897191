// An in-memory stand-in for Discord's lobby manager: just what the network manager example needs
// (members, member metadata, member-update events). Everyone in one process shares one LobbyService.

/** Member-update listener: `(lobbyId, userId)`, as `OnMemberUpdate`. */
export type MemberUpdateListener = (lobbyId: bigint, userId: bigint) => void;

interface Lobby {
  readonly secret: string;
  readonly members: bigint[];
  readonly metadata: Map<bigint, Map<string, string>>;
}

/** The lobby server: lobbies by id, shared by every {@link LobbyManager} in the process. */
export class LobbyService {
  readonly #lobbies = new Map<bigint, Lobby>();
  readonly #managers = new Set<LobbyManager>();

  /** A client's view of the service (one per user, like `discord.GetLobbyManager()`). */
  manager(userId: bigint): LobbyManager {
    const m = new LobbyManager(this, userId);
    this.#managers.add(m);
    return m;
  }

  /** @internal */
  lobby(id: bigint, secret: string, create: boolean): Lobby | null {
    let l = this.#lobbies.get(id);
    if (!l && create) {
      l = { secret, members: [], metadata: new Map() };
      this.#lobbies.set(id, l);
    }
    return l && l.secret === secret ? l : null;
  }

  /** @internal A lobby a manager has joined. */
  get(id: bigint): Lobby | null {
    return this.#lobbies.get(id) ?? null;
  }

  /** @internal Tells every member's manager, asynchronously as Discord does. */
  announce(lobbyId: bigint, userId: bigint): void {
    for (const m of this.#managers) queueMicrotask(() => m.notify(lobbyId, userId));
  }
}

/** One user's lobby manager: `ConnectLobby`, `UpdateMember`, `GetMemberMetadataValue`, `OnMemberUpdate`. */
export class LobbyManager {
  readonly #service: LobbyService;
  readonly #userId: bigint;
  readonly #joined = new Set<bigint>();
  readonly #listeners: MemberUpdateListener[] = [];

  constructor(service: LobbyService, userId: bigint) {
    this.#service = service;
    this.#userId = userId;
  }

  /** Joins (or creates) lobby `lobbyId` with `secret`. Returns false for a wrong secret. */
  connectLobby(lobbyId: bigint, secret: string): boolean {
    const l = this.#service.lobby(lobbyId, secret, true);
    if (!l) return false;
    if (!l.members.includes(this.#userId)) l.members.push(this.#userId);
    this.#joined.add(lobbyId);
    this.#service.announce(lobbyId, this.#userId);
    return true;
  }

  /** Sets this user's member metadata (a member update transaction, committed). */
  updateMember(lobbyId: bigint, values: Readonly<Record<string, string>>): boolean {
    const l = this.#joined.has(lobbyId) ? this.#lobby(lobbyId) : null;
    if (!l) return false;
    let md = l.metadata.get(this.#userId);
    if (!md) l.metadata.set(this.#userId, (md = new Map()));
    for (const [k, v] of Object.entries(values)) md.set(k, v);
    this.#service.announce(lobbyId, this.#userId);
    return true;
  }

  memberCount(lobbyId: bigint): number {
    return this.#lobby(lobbyId)?.members.length ?? 0;
  }

  getMemberUserId(lobbyId: bigint, index: number): bigint | null {
    return this.#lobby(lobbyId)?.members[index] ?? null;
  }

  getMemberMetadataValue(lobbyId: bigint, userId: bigint, key: string): string | null {
    return this.#lobby(lobbyId)?.metadata.get(userId)?.get(key) ?? null;
  }

  /** `OnMemberUpdate`: fires for updates of any member of a lobby this user joined, itself included. */
  onMemberUpdate(fn: MemberUpdateListener): void {
    this.#listeners.push(fn);
  }

  /** @internal */
  notify(lobbyId: bigint, userId: bigint): void {
    if (!this.#joined.has(lobbyId)) return;
    for (const fn of this.#listeners) fn(lobbyId, userId);
  }

  #lobby(lobbyId: bigint): Lobby | null {
    return this.#joined.has(lobbyId) ? this.#service.get(lobbyId) : null;
  }
}
