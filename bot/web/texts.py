"""What the site says, French first (English with `language = "en"`). Placeholders: {hashtag}
{n} {page} {name}."""

from __future__ import annotations

# What each default category is for (README's table); a configured category without an entry
# here is shown by its label alone.
PURPOSES: dict[str, dict[str, str]] = {
    "fr": {
        "projet": "un projet qui peut inspirer des actions sur les axes des contrats de ville",
        "contexte": "du contexte pour comprendre les enjeux numériques des publics visés",
        "initiative": "des initiatives, rapports ou prises de position qui mobilisent les acteurs",
        "prospective": "un regard prospectif sur les usages numériques et leurs conséquences sociales",
    },
    "en": {
        "projet": "a project that can inspire actions on the axes of the contrats de ville",
        "contexte": "context that helps understand the digital stakes for the target publics",
        "initiative": "initiatives, reports or statements that mobilise actors on digital issues",
        "prospective": "a forward look at changing digital uses and their social consequences",
    },
}

WORDS: dict[str, dict[str, str]] = {
    "fr": {
        "site_title": "La veille #{hashtag}", "skip": "Aller au contenu", "nav": "Navigation",
        "home": "Cette semaine", "archive": "Archives", "categories": "Catégories",
        "search": "Recherche", "about": "Participer", "feeds": "Flux",
        "search_label": "Rechercher dans la veille", "search_button": "Rechercher",
        "archive_title": "Toutes les semaines", "archive_intro": "Chaque semaine depuis le premier partage.",
        "category_intro": "Tous les partages classés « {name} », du plus récent au plus ancien.",
        "no_items": "Aucun partage pour l'instant.", "no_results": "Aucun résultat pour cette recherche.",
        "results": "Résultats pour « {q} »",
        "search_intro": "Cherchez dans les textes, liens, titres et auteurs.",
        "previous": "Page précédente", "next": "Page suivante", "page": "Page {page}",
        "by": "Partagé par", "on": "sur", "subscribe": "S'abonner à cette catégorie",
        "subscribe_all": "S'abonner à toute la veille", "feed_formats": "Atom, RSS ou JSON Feed",
        "not_found": "Page introuvable", "not_found_text": "Cette page n'existe pas.",
        "about_title": "Participer à la veille",
        "about_intro": "La veille rassemble ce que les professionnel·les de la politique de la ville "
        "partagent sur le numérique avec le mot-dièse #{hashtag}, sur Mastodon et Bluesky.",
        "about_how": "Comment participer", "about_post": "Publiez un lien ou un message avec #{hashtag}.",
        "about_answer": "Le robot vous répond pour demander la catégorie : répondez par le numéro "
        "ou le mot (« 2 », « contexte »). Vous pouvez aussi l'indiquer d'emblée : #{hashtag} #projet.",
        "about_categories": "Les quatre catégories",
        "about_stop_title": "Ne plus être sollicité·e",
        "about_stop": "Répondez « stop » au robot : il ne vous demandera plus rien. Avec #nobot, "
        "#noindex ou #noai dans votre profil, il ne vous écrit jamais et vos publications ne "
        "figurent pas dans la veille.",
        "about_erase_title": "Demander l'effacement",
        "about_erase": "Pour que vos partages et leur historique soient effacés, écrivez à l'équipe "
        "qui anime la veille (en mentionnant le compte du robot) : elle les efface de la base.",
        "login_title": "Connexion des modérateurs", "username": "Nom", "password": "Mot de passe",
        "login_button": "Se connecter", "login_failed": "Nom ou mot de passe incorrect.",
        "too_many": "Trop de tentatives. Réessayez dans une minute.",
        "forbidden": "Requête refusée (jeton de formulaire manquant ou expiré). Rechargez la page.",
        "logout": "Se déconnecter", "desk": "Modération", "queue": "À décider",
        "classified": "Classés", "withdrawn": "Retirés", "blocked": "Auteurs bloqués",
        "history": "Historique", "signed_in": "Connecté·e : {name}",
        "queue_intro": "Les partages qui attendent une catégorie (vus, sollicités, sans réponse).",
        "classify": "Classer", "withdraw": "Retirer", "restore": "Rétablir", "block": "Bloquer l'auteur",
        "unblock": "Débloquer", "category": "Catégorie", "state": "État", "author": "Auteur",
        "when": "Quand", "who": "Qui", "what": "Décision", "item": "Partage",
        "not_applied": "Décision non appliquée : le partage a changé entre-temps (voir l'historique "
        "et le journal). Réessayez dans un instant.",
        "author_blocked": "auteur bloqué", "nothing_here": "Rien ici.", "see_post": "voir la publication",
        "decision_classify": "classé", "decision_withdraw": "retiré", "decision_restore": "rétabli",
        "decision_block": "auteur bloqué", "decision_unblock": "auteur débloqué",
        "state_seen": "vu", "state_prompted": "sollicité", "state_expired": "sans réponse",
        "state_classified": "classé", "state_withdrawn": "retiré", "state_deleted": "supprimé",
        "state_skipped": "ignoré",
    },
    "en": {
        "site_title": "The #{hashtag} digest", "skip": "Skip to content", "nav": "Navigation",
        "home": "This week", "archive": "Archive", "categories": "Categories", "search": "Search",
        "about": "Take part", "feeds": "Feeds", "search_label": "Search the digest",
        "search_button": "Search", "archive_title": "Every week",
        "archive_intro": "Every week since the first share.",
        "category_intro": "Every share filed under \"{name}\", newest first.",
        "no_items": "Nothing shared yet.", "no_results": "No result for this search.",
        "results": "Results for \"{q}\"", "search_intro": "Search texts, links, titles and authors.",
        "previous": "Previous page", "next": "Next page", "page": "Page {page}",
        "by": "Shared by", "on": "on", "subscribe": "Subscribe to this category",
        "subscribe_all": "Subscribe to the whole digest", "feed_formats": "Atom, RSS or JSON Feed",
        "not_found": "Page not found", "not_found_text": "This page does not exist.",
        "about_title": "Taking part in the digest",
        "about_intro": "The digest gathers what urban-policy professionals share about digital "
        "issues with the hashtag #{hashtag}, on Mastodon and Bluesky.",
        "about_how": "How to take part", "about_post": "Post a link or a message with #{hashtag}.",
        "about_answer": "The bot replies to ask for a category: answer with the number or the word "
        "(\"2\", \"context\"). You can also say it at once: #{hashtag} #projet.",
        "about_categories": "The four categories", "about_stop_title": "Not being asked again",
        "about_stop": "Answer \"stop\" to the bot: it will not ask you anything again. With #nobot, "
        "#noindex or #noai in your profile it never writes to you and your posts stay out of the digest.",
        "about_erase_title": "Asking for erasure",
        "about_erase": "To have your shares and their history erased, write to the team running the "
        "digest (mentioning the bot's account): they erase them from the database.",
        "login_title": "Moderators' sign-in", "username": "Name", "password": "Password",
        "login_button": "Sign in", "login_failed": "Wrong name or password.",
        "too_many": "Too many attempts. Try again in a minute.",
        "forbidden": "Request refused (missing or expired form token). Reload the page.",
        "logout": "Sign out", "desk": "Moderation", "queue": "To decide", "classified": "Classified",
        "withdrawn": "Withdrawn", "blocked": "Blocked authors", "history": "History",
        "signed_in": "Signed in: {name}",
        "queue_intro": "Shares waiting for a category (seen, prompted, unanswered).",
        "classify": "Classify", "withdraw": "Withdraw", "restore": "Restore", "block": "Block the author",
        "unblock": "Unblock", "category": "Category", "state": "State", "author": "Author",
        "when": "When", "who": "Who", "what": "Decision", "item": "Share",
        "not_applied": "Decision not applied: the share changed meanwhile (see the history and the "
        "log). Try again in a moment.",
        "author_blocked": "author blocked", "nothing_here": "Nothing here.", "see_post": "see the post",
        "decision_classify": "classified", "decision_withdraw": "withdrawn",
        "decision_restore": "restored", "decision_block": "author blocked",
        "decision_unblock": "author unblocked",
        "state_seen": "seen", "state_prompted": "prompted", "state_expired": "unanswered",
        "state_classified": "classified", "state_withdrawn": "withdrawn", "state_deleted": "deleted",
        "state_skipped": "skipped",
    },
}


def words(language: str, hashtag: str) -> dict[str, str]:
    """The site's texts in `language`, with the hashtag filled in."""
    return {k: v.replace("{hashtag}", hashtag) for k, v in WORDS.get(language, WORDS["fr"]).items()}
